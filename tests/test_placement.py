"""Where a signal is, as a table: the pure facts (rules/placement.py) and the one wording (announce/text.py)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from lamplighter.announce.text import where_text
from lamplighter.model import LampState, Signal
from lamplighter.rules.placement import Where, place, winners_at

NOW = 1_000.0
RED, YELLOW = LampState(on=True, color="#ff0000"), LampState(on=True, color="#ffd000")


def signal(event_id: int, level: str, priority: int, lamps: tuple[str, ...] = ("desk",), **fields: object) -> Signal:
    return replace(Signal(event_id, level, f"k{event_id}", f"title {event_id}", priority, RED if priority > 200 else
                          YELLOW, frozenset(lamps), NOW - 10 + event_id, None), **fields)


OUTAGE = signal(1, "911", 300)
WARNING = signal(2, "912", 100)
ON_HALL = signal(3, "912", 100, ("hall",))
SNOOZED = signal(4, "912", 100, snoozed_until=NOW + 60)
STRANDED = signal(5, "911", 300, ("attic",), fallbacks=frozenset({"hall"}))
NO_FALLBACK = signal(6, "912", 100, ("attic",))


@pytest.mark.parametrize(("subject", "where", "words"), [
    (OUTAGE, Where.ON_LAMP, "On the lamp now"),
    (WARNING, Where.QUEUED, "Queued behind a 911 (“title 1”), shows when it ends"),
    (ON_HALL, Where.QUEUED, "Queued behind a 911 (“title 5”), shows when it ends"),  # the fallback took the hall
    (SNOOZED, Where.SNOOZED, "Snoozed until T; shows then if still active"),
    (STRANDED, Where.FALLBACK_ONLY, "Shown on the fallback only (hall): attic offline"),
    (NO_FALLBACK, Where.OFFLINE, "Not on any lamp: attic offline"),
    (signal(7, "912", 100, expires_at=NOW - 1), Where.ENDED, "Ended without ever being on a lamp"),
])
def test_where_a_signal_is_and_what_it_is_called(subject: Signal, where: Where, words: str) -> None:
    active = [OUTAGE, WARNING, ON_HALL, SNOOZED, STRANDED, NO_FALLBACK]
    winners = winners_at(active, ["desk", "hall", "attic"], NOW)
    placement = place(subject, winners, lambda lamp: lamp != "attic", lambda lamp: "offline", NOW)
    assert placement.where is where
    assert where_text(placement, at=lambda _: "T") == words


def test_an_ended_signal_says_where_it_was_or_that_it_is_not_known() -> None:
    ended = place(None, {}, lambda _: True, lambda _: "", NOW, ever_shown_on=["hall", "desk"])
    assert where_text(ended) == "Ended; it was on desk, hall"
    before_a_restart = place(None, {}, lambda _: True, lambda _: "", NOW, ever_known=False)
    assert where_text(before_a_restart) == "Ended"
