"""What live views (the dashboard) refresh for: one small value per change."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Activity:
    """Something a live view should refresh for: an event stored, a signal acknowledged, snoozed or ended."""

    kind: str  # "event", "acknowledged", "snoozed", "expired", "ended", "snooze", "sources", "fallback", "reloaded"
    event_id: int | None = None
