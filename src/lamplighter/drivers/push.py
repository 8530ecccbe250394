"""A device's own stream of state reports, kept open by the one reconnect loop (lamplighter/reconnect.py).

Devices that push their state (WLED's websocket, the Hue bridge's event stream, Home
Assistant's websocket API) tell a driver every change as it happens, so the lamp planner
knows what the lamp shows before an alert takes it and needs no read first. A driver gives
`PushStream` a `listen(up)` coroutine that opens the stream, calls `up()` once it is open
(the backoff starts again from the beginning), and hands every report to the driver until
the stream ends. Whenever the stream is not open the driver is told so (`on_lost`), so the
planner stops believing the last report and reads the device as before.

Messages are untrusted: each is bounded in size (`MAX_PUSH_BYTES`) and JSON depth
(lamplighter/untrusted.py) before it is parsed; a malformed one is skipped, not fatal.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Generic, TypeVar

from lamplighter.backoff import Backoff
from lamplighter.errors import DriverError, PayloadError
from lamplighter.reconnect import Reconnecting
from lamplighter.untrusted import load_json

log = logging.getLogger(__name__)

MAX_PUSH_BYTES = 256 * 1024  # a WLED state with many segments is some KiB; a Hue event a few hundred bytes
PUSH_BACKOFF_FIRST = 1.0

Listen = Callable[[Callable[[], None]], Awaitable[None]]
Report = TypeVar("Report")


class PushStream(Reconnecting):
    """One device's push stream: `listen` runs one connection; `on_lost` hears every loss (and why)."""

    def __init__(self, name: str, listen: Listen, on_lost: Callable[[str], None]) -> None:
        super().__init__(f"{name} (state stream)", Backoff(first=PUSH_BACKOFF_FIRST))
        self._listen = listen
        self._on_lost = on_lost
        self.connected = False

    def start(self) -> None:
        """Run the stream in the background until `stop()`."""
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name=self.name)

    async def _session(self) -> None:
        try:
            await self._listen(self._up)
            error = "the device closed the stream"
        except (asyncio.CancelledError, KeyboardInterrupt, SystemExit):
            self._down("stopped")
            raise
        except Exception as exc:  # any failure of the stream only means: read the device until it is back
            error = str(exc) or type(exc).__name__
        self._down(error)

    def _up(self) -> None:
        self.connected = True
        self._backoff.reset()

    def _down(self, error: str) -> None:
        """The stream is not open (lost, refused, or stopped): what it said last is no longer current."""
        was_connected, self.connected = self.connected, False
        if was_connected and not self._stopping():
            log.info("%s: lost (%s); reading the device until it is back", self.name, error)
        self._on_lost(error)


def parse_report(data: bytes | str, name: str) -> Any:
    """A pushed message as JSON within the bounds, or None (logged at debug) if it is not."""
    try:
        return load_json(data, max_bytes=MAX_PUSH_BYTES)
    except PayloadError as exc:
        log.debug("%s: skipped a pushed message that %s", name, exc)
        return None


async def server_sent_data(chunks: AsyncIterator[bytes], name: str) -> AsyncIterator[str]:
    """The `data:` of each server-sent event in a byte stream, each line bounded by MAX_PUSH_BYTES."""
    buffer, data = b"", []
    async for chunk in chunks:
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        if len(buffer) > MAX_PUSH_BYTES:
            raise DriverError(f"{name} sent an event line longer than {MAX_PUSH_BYTES // 1024} KiB")
        for line in lines:
            text = line.rstrip(b"\r").decode(errors="replace")
            if text.startswith("data:"):
                data.append(text[5:].lstrip(" "))
            elif not text and data:
                yield "\n".join(data)
                data = []


class Told(Generic[Report]):
    """What a shared stream last told of each resource (a Hue light, a Home Assistant entity), and who watches it.

    `watch(key, watcher)` calls `watcher` with the resource now (if told) and on every change;
    `forget()` (the stream is lost) tells every watcher None: the resource is unknown again."""

    def __init__(self) -> None:
        self._told: dict[str, Report] = {}
        self._watchers: dict[str, list[Callable[[Report | None], None]]] = {}

    @property
    def watched(self) -> list[str]:
        return list(self._watchers)

    def watch(self, key: str, watcher: Callable[[Report | None], None]) -> bool:
        """Watch `key`; True when it is the first watcher of it (the stream may need to ask for it)."""
        first = key not in self._watchers
        self._watchers.setdefault(key, []).append(watcher)
        if key in self._told:
            watcher(self._told[key])
        return first

    def get(self, key: str) -> Report | None:
        return self._told.get(key)

    def tell(self, key: str, report: Report | None) -> None:
        """The stream told `report` of `key` (None: it no longer exists)."""
        if report is None:
            self._told.pop(key, None)
        else:
            self._told[key] = report
        for watcher in self._watchers.get(key, ()):
            watcher(report)

    def tell_all(self, reports: dict[str, Report]) -> None:
        """Everything the stream knows now (on connect): every watched key is told, or told it is unknown."""
        self._told = dict(reports)
        for key in self._watchers:
            self.tell(key, self._told.get(key))

    def forget(self) -> None:
        self.tell_all({})
