"""Reconnect pacing for sources that hold a connection (MQTT brokers, camera streams)."""

from __future__ import annotations

from dataclasses import dataclass

BACKOFF_FIRST = 1.0
BACKOFF_MAX = 60.0


@dataclass
class Backoff:
    """Exponential backoff: `first`, doubling up to `most`; `reset` after a good connection."""

    first: float = BACKOFF_FIRST
    most: float = BACKOFF_MAX
    _next: float | None = None

    def next(self) -> float:
        """The pause before the next attempt; each call doubles the one after."""
        pause = self.first if self._next is None else self._next
        self._next = min(pause * 2, self.most)
        return pause

    def reset(self) -> None:
        self._next = None
