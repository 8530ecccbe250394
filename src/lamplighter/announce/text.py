"""What Lamplighter says in words: announcements, and where a signal is (one wording for every face).

`where_text` is the one function that turns the facts of rules/placement.py into the
sentence Slack, the API, the CLI and the dashboard show ("On the lamp now", "Queued behind
a 911, shows when it ends", "Shown on the fallback only: desk offline"). The words live in
WORDS, one table, so that they can be translated in one place.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime

from lamplighter.i18n import N_, _
from lamplighter.model import Event, Receipt
from lamplighter.rules.away import Away
from lamplighter.rules.placement import Placement, Where

MAX_BODY = 1000

WORDS: dict[str, str] = {
    "on_lamp": N_("On the lamp now"),
    "queued": N_("Queued behind a {level} (“{title}”), shows when it ends"),
    "queued_unknown": N_("Queued behind a higher level, shows when it ends"),
    "snoozed": N_("Snoozed until {until}; shows then if still active"),
    "fallback_only": N_("Shown on the fallback only ({lamps}): {offline}"),
    "offline": N_("Not on any lamp: {offline}"),
    "ended": N_("Ended"),
    "ended_shown": N_("Ended; it was on {lamps}"),
    "ended_never": N_("Ended without ever being on a lamp"),
    "offline_lamp": N_("{lamp} offline"),
    "announce_body": N_("{where}{sender} via {source} (event {id})."),
    "announce_sender": N_(" from {sender}"),
    "digest_title": N_("While you were away ({start}-{end})"),
    "digest_nothing": N_("Nothing happened."),
    "digest_total": N_("{total} event(s): {counts}."),
    "digest_count": N_("{count} {outcome}"),
    "digest_line": N_("{time} {level} “{title}”: {outcome}"),
}


def word(key: str) -> str:
    """One of WORDS in the current language (lamplighter.i18n)."""
    return _(WORDS[key])


def local_time(epoch: float) -> str:
    return datetime.fromtimestamp(epoch).astimezone().strftime("%H:%M")


def where_text(placement: Placement, at: Callable[[float], str] = local_time) -> str:
    """The one sentence for where a signal is; `at` formats a time (Slack uses its date token)."""
    offline = ", ".join(word("offline_lamp").format(lamp=lamp) for lamp, _ in placement.offline)
    lamps = ", ".join(placement.lamps)
    where = placement.where
    if where is Where.ON_LAMP:
        return word("on_lamp")
    if where is Where.QUEUED:
        behind = placement.behind
        return word("queued").format(level=behind.level, title=behind.title) if behind else word("queued_unknown")
    if where is Where.SNOOZED:
        return word("snoozed").format(until=at(placement.snoozed_until or 0.0))
    if where is Where.FALLBACK_ONLY:
        return word("fallback_only").format(lamps=lamps, offline=offline)
    if where is Where.OFFLINE:
        return word("offline").format(offline=offline)
    return ever_text(placement)


def ever_text(placement: Placement) -> str:
    """Whether an ended signal was ever on a lamp (not known for one that began before a restart)."""
    if not placement.ever_known:
        return word("ended")
    if placement.ever_shown_on:
        return word("ended_shown").format(lamps=", ".join(placement.ever_shown_on))
    return word("ended_never")


Picture = Callable[[], Awaitable[bytes | None]]
"""Gets the JPEG behind an event (a door snapshot) when a channel that takes images posts it."""


@dataclass(frozen=True)
class Announcement:
    title: str
    body: str
    picture: Picture | None = field(default=None, compare=False)


def describe(event: Event, receipt: Receipt, where: str | None = None) -> Announcement:
    """An announcement of a shown event; `where` is `where_text` of its placement when it was shown."""
    sender = word("announce_sender").format(sender=event.sender) if event.sender else ""
    body = word("announce_body").format(where=where if where is not None else word("on_lamp"), sender=sender,
                                        source=event.source, id=receipt.id)
    details = event.body[:MAX_BODY]
    return Announcement(f"{event.level}: {event.title}", f"{body}\n{details}" if details else body)


def digest_text(away: Away, at: Callable[[float], str] = local_time) -> tuple[str, str]:
    """(title, body) of what happened in a stretch of time: counts by outcome, then the notable events."""
    title = word("digest_title").format(start=at(away.since), end=at(away.until))
    if not away.total:
        return title, word("digest_nothing")
    counts = ", ".join(word("digest_count").format(count=n, outcome=o) for o, n in sorted(away.counts.items()))
    lines = [word("digest_line").format(time=at(e.received_at), level=e.level, title=e.title, outcome=e.outcome)
             for e in away.notable]
    return title, "\n".join([word("digest_total").format(total=away.total, counts=counts), *lines])


def digest_announcement(away: Away) -> Announcement:
    return Announcement(*digest_text(away))
