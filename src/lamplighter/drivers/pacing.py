"""Vendor rate limits, kept by the driver itself: at most N messages to a device in any window.

The lamp controller already coalesces to the latest state and paces `apply` calls by the
driver's `min_interval`; this is the device-level guard underneath, for drivers that send
more than one message per apply (LIFX: colour, then power) or read and write in one step.
A small margin is added to the window so that network jitter never lets the device see
N + 1 messages within its own window.
"""

from __future__ import annotations

import asyncio
from collections import deque

JITTER_MARGIN = 0.05  # seconds added to every window


class RateLimit:
    """At most `limit` sends in any `window` seconds; `wait()` before each send."""

    def __init__(self, limit: int, window: float = 1.0) -> None:
        self.limit = limit
        self.window = window + JITTER_MARGIN
        self._sent: deque[float] = deque(maxlen=limit)

    async def wait(self) -> None:
        """Return when one more send keeps within the limit, and count it as sent."""
        loop = asyncio.get_running_loop()
        if len(self._sent) == self.limit:
            pause = self._sent[0] + self.window - loop.time()
            if pause > 0:
                await asyncio.sleep(pause)
        self._sent.append(loop.time())
