"""Pictures behind door events (a Frigate snapshot, a camera's JPEG), fetched or read within bounds.

A picture is only ever looked up by the source that made the event, from where that source
keeps its pictures: a camera's own snapshot folder, the configured Frigate's snapshot API.
A label on an event from anywhere else (an API client can set any label) is never followed.
"""

from __future__ import annotations

import logging
from pathlib import Path

import httpx

log = logging.getLogger(__name__)

MAX_PICTURE_BYTES = 2 * 1024 * 1024  # a door snapshot is 50-500 kB; more is not a snapshot
FETCH_TIMEOUT = 5.0
JPEG_START = b"\xff\xd8\xff"


def read_picture(path: Path, folder: Path) -> bytes | None:
    """A JPEG file inside `folder`, if it is one and not too large; else None."""
    try:
        real = path.resolve()
        if not real.is_relative_to(folder.resolve()) or real.stat().st_size > MAX_PICTURE_BYTES:
            return None
        data = real.read_bytes()
    except OSError:
        return None
    return data if data.startswith(JPEG_START) and len(data) <= MAX_PICTURE_BYTES else None


async def fetch_picture(url: str) -> bytes | None:
    """A JPEG from `url` (Frigate's /api/events/ID/snapshot.jpg), read up to MAX_PICTURE_BYTES; else None."""
    try:
        async with httpx.AsyncClient(timeout=FETCH_TIMEOUT) as client, client.stream("GET", url) as response:
            if response.status_code != 200:
                log.info("no snapshot from %s: HTTP %d", url, response.status_code)
                return None
            data = b""
            async for chunk in response.aiter_bytes():
                data += chunk
                if len(data) > MAX_PICTURE_BYTES:
                    log.info("no snapshot from %s: larger than %d bytes", url, MAX_PICTURE_BYTES)
                    return None
    except httpx.HTTPError as exc:
        log.info("no snapshot from %s: %s", url, type(exc).__name__)
        return None
    return data if data.startswith(JPEG_START) else None
