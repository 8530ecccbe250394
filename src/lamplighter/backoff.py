"""Exponential backoff, the one used everywhere something is retried.

Lamps that went offline, MQTT brokers (for sources and lamp drivers alike), IMAP and SMTP
sessions, Slack's socket and camera streams all wait `first` seconds after the first
failure, doubling up to `most`, and start again from `first` after a success.
`delay(failures)` is the pure form (the lamp planner keeps a failure count in its memory);
`Backoff` wraps it for a reconnect loop that counts for itself.
"""

from __future__ import annotations

from dataclasses import dataclass

BACKOFF_FIRST = 1.0
BACKOFF_MAX = 60.0


def delay(failures: int, first: float = BACKOFF_FIRST, most: float = BACKOFF_MAX) -> float:
    """Seconds to wait after `failures` failures in a row (1 or more): first, 2*first, ... up to most."""
    return min(first * 2.0 ** min(max(failures - 1, 0), 62), most)


@dataclass
class Backoff:
    """Exponential backoff for a loop: `next()` after each failure, `reset()` after a good connection."""

    first: float = BACKOFF_FIRST
    most: float = BACKOFF_MAX
    failures: int = 0

    def next(self) -> float:
        """The pause before the next attempt; each call doubles the one after."""
        self.failures += 1
        return delay(self.failures, self.first, self.most)

    def reset(self) -> None:
        self.failures = 0
