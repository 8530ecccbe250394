"""What an announcement says: the level and title, who sent it, from where, and the event id."""

from __future__ import annotations

from dataclasses import dataclass

from lamplighter.i18n import _
from lamplighter.model import Event, Receipt

MAX_BODY = 1000


@dataclass(frozen=True)
class Announcement:
    title: str
    body: str


def describe(event: Event, receipt: Receipt) -> Announcement:
    body = (_("On the lamp now from {sender} via {source} (event {id}).") if event.sender else
            _("On the lamp now via {source} (event {id}).")).format(sender=event.sender, source=event.source,
                                                                   id=receipt.id)
    details = event.body[:MAX_BODY]
    return Announcement(f"{event.level}: {event.title}", f"{body}\n{details}" if details else body)
