"""The one reconnect loop: stay connected until stopped, waiting with the shared backoff after each loss.

`Reconnecting` runs `_session()` (one connection, from connect to loss, reporting its own
failures rather than raising) again and again, pausing `backoff.next()` seconds between
attempts; a session resets the backoff once it is up. The MQTT link of the sources and lamp
drivers (lamplighter/mqtt.py) and the push streams of lamp devices (drivers/push.py) are
its two kinds.

Stopping does not depend on a cancellation being delivered: some libraries wait with
`asyncio.wait_for`, which on Python 3.11 can swallow one. `stop()` sets a flag that the
backoff pause watches and the loop checks at every turn, cancels the loop's task again
until it ends, and gives up waiting after `STOP_WITHIN` seconds. A loop whose task someone
else cancels (the service) ends at its next turn too, even if the cancellation was
swallowed on the way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from abc import ABC, abstractmethod

from lamplighter.backoff import Backoff

log = logging.getLogger(__name__)

STOP_WITHIN = 2.0  # seconds stop() waits for the loop at most
CANCEL_AGAIN = 0.1  # seconds between cancellations while stop() waits


class Reconnecting(ABC):
    """A connection that reconnects by itself until stopped; `name` says what it connects to, in logs."""

    def __init__(self, name: str, backoff: Backoff) -> None:
        self.name = name
        self._backoff = backoff
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def run(self) -> None:
        """Stay connected until stopped: one session after another, with backoff between them."""
        self._task = asyncio.current_task()
        while not self._stopping():
            await self._session()
            if not self._stopping():
                await self._pause(self._backoff.next())
        if not self._stop.is_set():  # cancelled, and something on the way swallowed it
            raise asyncio.CancelledError

    async def stop(self) -> None:
        """End the loop; returns within STOP_WITHIN seconds even if the loop's task swallows cancellations."""
        self._stop.set()
        task = self._task
        if task is None or task is asyncio.current_task():
            return
        try:
            async with asyncio.timeout(STOP_WITHIN):
                while not task.done():
                    task.cancel()
                    await asyncio.wait({task}, timeout=CANCEL_AGAIN)
        except TimeoutError:
            log.error("%s: the connection did not stop within %g s; left behind", self.name, STOP_WITHIN)

    @abstractmethod
    async def _session(self) -> None:
        """One connection, from connect to loss; every failure but a cancellation is reported, not raised."""

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._stop.wait()

    def _stopping(self) -> bool:
        """Stopped by stop(), or cancelled (a cancellation swallowed on the way still counts)."""
        task = asyncio.current_task()
        return self._stop.is_set() or (task is not None and task.cancelling() > 0)
