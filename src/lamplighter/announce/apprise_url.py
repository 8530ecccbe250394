"""Announce through any Apprise URL (Slack webhook, Discord, Telegram, ntfy, Matrix, JSON...).

Apprise is blocking, so each post runs in a worker thread. A door event's snapshot is
attached where the service takes attachments (ntfy, Telegram, Discord, Pushover, mail...).
Apprise logs why a post failed (with its own secrets hidden); we add one line naming the URL
as `url(privacy=True)` prints it.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import apprise

from lamplighter.announce.text import Announcement
from lamplighter.errors import ConfigError

log = logging.getLogger(__name__)


class AppriseAnnouncer:
    """Posts to one Apprise URL."""

    def __init__(self, url: str) -> None:
        service = apprise.Apprise.instantiate(url)
        if service is None:
            scheme = urlsplit(url).scheme or "(none)"
            raise ConfigError([("", f"not a URL Apprise can post to (scheme {scheme!r}); see "
                                    "https://github.com/caronc/apprise/wiki, or write slack-app:#channel")])
        self.name = str(service.url(privacy=True))  # type: ignore[no-untyped-call]
        self._apprise = apprise.Apprise()
        self._apprise.add(service)

    async def post(self, message: Announcement, signal_id: int | None) -> None:
        picture = await message.picture() if message.picture is not None else None
        try:
            with tempfile.TemporaryDirectory(prefix="lamplighter-") as folder:
                attach = _written(Path(folder) / "snapshot.jpg", picture) if picture else None
                sent = await asyncio.to_thread(self._apprise.notify, body=message.body, title=message.title,
                                               attach=attach)
        except Exception as exc:  # whatever a plug-in raises must not reach the event path
            log.warning("announce to %s failed: %s", self.name, type(exc).__name__)
            return
        if not sent:
            log.warning("announce to %s failed (Apprise logged why)", self.name)


def _written(path: Path, data: bytes) -> str:
    """Apprise attaches files by path: the snapshot, written for the length of one post."""
    path.write_bytes(data)
    return str(path)
