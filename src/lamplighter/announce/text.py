"""What an announcement says: the level and title, who sent it, from where, and the event id."""

from __future__ import annotations

from dataclasses import dataclass

from lamplighter.model import Event, Receipt

MAX_BODY = 1000


@dataclass(frozen=True)
class Announcement:
    title: str
    body: str


def describe(event: Event, receipt: Receipt) -> Announcement:
    sender = f" from {event.sender}" if event.sender else ""
    body = f"On the lamp now{sender} via {event.source} (event {receipt.id})."
    details = event.body[:MAX_BODY]
    return Announcement(f"{event.level}: {event.title}", f"{body}\n{details}" if details else body)
