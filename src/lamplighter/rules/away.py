"""While you were away: what happened in a stretch of time, summed up from the journal's events (pure)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from lamplighter.model import Outcome, StoredEvent

NOTABLE = (Outcome.SHOWN, Outcome.QUIET, Outcome.THROTTLED, Outcome.UNROUTED, Outcome.REJECTED)
MAX_LISTED = 20


@dataclass(frozen=True)
class Away:
    since: float
    until: float
    counts: dict[str, int]  # outcome -> how many events
    notable: tuple[StoredEvent, ...]  # the newest events worth a look (not duplicates or resolutions), newest first

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def summarize(events: Sequence[StoredEvent], since: float, until: float) -> Away:
    """The events received from `since` to `until` (both included), counted by outcome, with the notable
    ones listed (at most MAX_LISTED)."""
    inside = [e for e in events if since <= e.received_at <= until]
    counts = sorted(Counter(e.outcome.value for e in inside).items())
    notable = sorted((e for e in inside if e.outcome in NOTABLE), key=lambda e: e.received_at, reverse=True)
    return Away(since, until, dict(counts), tuple(notable[:MAX_LISTED]))
