"""While you were away: quiet-hours windows as edges in time, the summary of a stretch, the digest
posted when quiet hours end (virtual time, a real Apprise post to a JSON receiver). /api/away: test_away_api.py."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from lamplighter.announce.text import digest_text, local_time
from lamplighter.config import QuietHoursConfig
from lamplighter.model import Outcome, make_event
from lamplighter.rules.away import summarize
from lamplighter.rules.quiet import last_quiet_window, next_quiet_end
from lamplighter.service import Service
from tests.peers.notify_receiver import notification_receiver
from tests.test_service import eventually
from tests.virtual_time import START, LoopClock

pytestmark = pytest.mark.virtual_time

NIGHT = QuietHoursConfig.model_validate({"start": "22:00", "end": "07:00", "timezone": "UTC"})
WEEKNIGHTS = QuietHoursConfig.model_validate({"start": "22:00", "end": "07:00", "days": ["mon", "tue", "wed", "thu"],
                                              "timezone": "UTC"})
QUIET = "guards: {quiet_hours: {start: '22:00', end: '07:00', timezone: UTC}, rate_limit: {per_sender: null}}\n"


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


@pytest.mark.parametrize(("now", "last", "next_end"), [
    ("2027-01-15 08:00", ("2027-01-14 22:00", "2027-01-15 07:00"), "2027-01-16 07:00"),  # a Friday morning
    ("2027-01-15 23:00", ("2027-01-14 22:00", "2027-01-15 07:00"), "2027-01-16 07:00"),  # inside Friday's night
    ("2027-01-16 07:00", ("2027-01-15 22:00", "2027-01-16 07:00"), "2027-01-17 07:00"),  # the very end
])
def test_quiet_windows_across_midnight(now: str, last: tuple[str, str], next_end: str) -> None:
    assert last_quiet_window([NIGHT], at(now)) == (at(last[0]), at(last[1]))
    assert next_quiet_end([NIGHT], at(now)) == at(next_end)


def test_a_window_belongs_to_the_day_it_starts_on() -> None:
    friday_noon = at("2027-01-15 12:00")  # Thursday night's window ended this morning; Friday has none
    assert last_quiet_window([WEEKNIGHTS], friday_noon) == (at("2027-01-14 22:00"), at("2027-01-15 07:00"))
    assert next_quiet_end([WEEKNIGHTS], friday_noon) == at("2027-01-19 07:00")  # Monday night's, on Tuesday
    assert next_quiet_end([], friday_noon) is None and last_quiet_window([], friday_noon) is None


async def test_the_digest_is_posted_once_when_quiet_hours_end(
        service_factory: Callable[..., Service], clock: LoopClock) -> None:
    async with notification_receiver() as receiver:
        service = service_factory(QUIET + f"digest: ['json://127.0.0.1:{receiver.port}/digest']\n")
        async with service.running():
            assert datetime.fromtimestamp(START, UTC).hour == 8
            service.submit(make_event("912", "before the night", received_at=clock.now(), sender="a"))
            await asyncio.sleep(15 * 3600)  # 23:00: quiet
            for n in range(3):
                service.submit(make_event("912", f"disk {90 + n}%", received_at=clock.now(), sender=f"s{n}"))
            service.submit(make_event("911", "payments down", received_at=clock.now(), sender="x"))
            await asyncio.sleep(7 * 3600)  # 06:00: still quiet, nothing posted
            assert receiver.received == []
            await asyncio.sleep(3600 + 5)  # 07:00:05
            await eventually(lambda: len(receiver.received) == 1)
            await asyncio.sleep(3600)
        [digest] = receiver.received
    start, end = START + 14 * 3600, START + 23 * 3600
    assert digest["title"] == f"While you were away ({local_time(start)}-{local_time(end)})"
    lines = digest["message"].splitlines()
    assert lines[0] == "4 event(s): 3 quiet, 1 shown."
    assert lines[1].endswith("911 “payments down”: shown") and lines[2].endswith("912 “disk 92%”: quiet")
    assert "before the night" not in digest["message"]


async def test_the_summary_of_a_stretch_counts_outcomes_and_lists_what_matters(
        service_factory: Callable[..., Service]) -> None:
    service = service_factory("guards: {rate_limit: {per_sender: null}}\n")
    first = service.submit(make_event("912", "disk", received_at=START, sender="a"))
    service.submit(make_event("912", "disk", received_at=START + 10, sender="a"))  # a duplicate
    service.submit(make_event("door", "bell", received_at=START + 20, sender="b"))
    away = summarize(service.store.events_since(START, 100), START + 5, START + 30)
    assert away.counts == {"deduplicated": 1, "shown": 1} and away.total == 2
    assert [e.title for e in away.notable] == ["bell"]
    assert first.outcome is Outcome.SHOWN
    assert digest_text(summarize([], START, START + 60), str)[1] == "Nothing happened."
