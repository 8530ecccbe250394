"""Router stages under a fake clock: routing, dedup, resolve, quiet hours and rate limits."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from lamplighter.config import parse_config
from lamplighter.model import Event, Outcome, make_event
from lamplighter.rules.active import ActiveSignals
from lamplighter.rules.router import Router, Verdict

BERLIN = ZoneInfo("Europe/Berlin")


class Harness:
    """A router plus the active signals, committing verdicts the way the service does."""

    def __init__(self, yaml_text: str = "") -> None:
        config = parse_config("lamps: {desk: virtual://desk, hall: virtual://hall}\n" + yaml_text, env={})
        self.router = Router(config.resolved_levels(), frozenset(config.lamps), config.guards)
        self.active = ActiveSignals()
        self.next_id = 1

    def send(self, now: float, level: str = "912", title: str = "hello", **fields: Any) -> Verdict:
        event = make_event(level, title, received_at=now, **fields)
        verdict = self.router.route(event, self.active, now)
        self.commit(event, verdict)
        return verdict

    def commit(self, event: Event, verdict: Verdict) -> None:
        self.router.commit(event, verdict)
        for ended in verdict.ended:
            del self.active[ended.event_id]
        if verdict.refreshed:
            self.active[verdict.refreshed.event_id] = verdict.refreshed
        if verdict.new_signal:
            self.active[self.next_id] = replace(verdict.new_signal, event_id=self.next_id)
        self.next_id += 1


def outcomes(verdicts: list[Verdict]) -> list[str]:
    return [v.outcome.value for v in verdicts]


def test_ten_hellos_in_a_minute_from_one_sender_are_mostly_throttled_and_told_when_to_retry() -> None:
    h = Harness()
    verdicts = [h.send(now=6.0 * i, title=f"hello {i}", sender="ta-bob") for i in range(10)]
    assert outcomes(verdicts) == ["shown", "shown"] + ["throttled"] * 3 + ["shown"] + ["throttled"] * 4
    throttled = [v for v in verdicts if v.outcome is Outcome.THROTTLED]
    assert all(v.retry_after and 0 < v.retry_after <= 30 for v in throttled)
    assert throttled[0].reasons[0].startswith("sender ta-bob is over the limit (2 at once, then one every 30s); "
                                              "try again in ")


def test_one_spamming_sender_does_not_throttle_another() -> None:
    h = Harness()
    for i in range(5):
        h.send(now=i, title=f"spam {i}", sender="spammer")
    assert h.send(now=5, title="more spam", sender="spammer").outcome is Outcome.THROTTLED
    assert h.send(now=5, title="real problem", sender="alice").outcome is Outcome.SHOWN


def test_a_flood_of_912_does_not_block_a_911_from_the_same_source() -> None:
    h = Harness("guards: {rate_limit: {per_sender: null, per_source: {every: 1m, burst: 2}}}\n")
    verdicts = [h.send(now=i, title=f"x{i}") for i in range(4)]
    assert outcomes(verdicts) == ["shown", "shown", "throttled", "throttled"]
    assert "over the limit (2 at once, then one every 1m); try again in 58s" in verdicts[2].reasons[0]
    assert h.send(now=5, level="911", title="payments down").outcome is Outcome.SHOWN


def test_hours_of_steady_spam_are_bounded_by_the_bucket() -> None:
    h = Harness()
    shown = sum(h.send(now=float(t), title=f"m{t}", sender="bot").outcome is Outcome.SHOWN
                for t in range(0, 10 * 3600, 5))  # one message every 5 s for 10 hours
    assert shown == 2 + (10 * 3600 - 5) // 30  # the burst, then one every 30 s


def test_same_key_while_active_refreshes_the_hold_instead_of_flashing() -> None:
    h = Harness()
    first = h.send(now=0, title="disk full")
    again = h.send(now=8, title="disk full")
    assert first.outcome is Outcome.SHOWN and again.outcome is Outcome.DEDUPLICATED
    assert again.refreshed is not None and again.refreshed.expires_at == 18  # 8 s + the 10 s hold
    assert "same key as active event 1" in again.reasons[0]


def test_same_key_after_the_hold_but_within_the_window_is_still_a_duplicate() -> None:
    h = Harness("guards: {dedup_window: 2m}\n")
    h.send(now=0, title="disk full")
    h.active.clear()  # the hold ended
    late = h.send(now=60, title="disk full")
    assert late.outcome is Outcome.DEDUPLICATED and "seen 1m ago" in late.reasons[0]
    assert h.send(now=60 + 121, title="disk full").outcome is Outcome.SHOWN


def test_explicit_key_groups_different_titles() -> None:
    h = Harness()
    h.send(now=0, title="HighLatency firing", key="fp-42")
    assert h.send(now=1, title="HighLatency still firing", key="fp-42").outcome is Outcome.DEDUPLICATED


def test_resolved_ends_the_matching_signal_and_a_new_firing_shows_again() -> None:
    h = Harness()
    h.send(now=0, level="911", title="api down", key="api")
    resolved = h.send(now=3, level="911", title="api up", key="api", status="resolved")
    assert resolved.outcome is Outcome.RESOLVED and [s.event_id for s in resolved.ended] == [1]
    assert not h.active
    assert h.send(now=4, level="911", title="api down", key="api").outcome is Outcome.SHOWN


def test_resolved_with_nothing_active_says_so() -> None:
    verdict = Harness().send(now=0, title="x", key="nothing", status="resolved")
    assert verdict.outcome is Outcome.RESOLVED and verdict.reasons == ("nothing active with this key",)


def test_a_key_that_changes_level_replaces_the_old_signal() -> None:
    h = Harness()
    h.send(now=0, level="912", title="latency", key="fp-7")
    escalated = h.send(now=1, level="911", title="latency", key="fp-7")
    assert escalated.outcome is Outcome.SHOWN and [s.level for s in escalated.ended] == ["912"]
    assert [s.level for s in h.active.values()] == ["911"]


def test_unknown_level_and_level_without_lamps_are_unrouted() -> None:
    h = Harness("levels: {deploy: {color: blue, priority: 10, lamps: []}}\n")
    assert h.send(now=0, level="nope").outcome is Outcome.UNROUTED
    assert h.send(now=0, level="deploy").reasons == ("level deploy has no lamps",)


def test_signal_targets_the_levels_lamps_or_all() -> None:
    h = Harness("levels: {912: {lamps: [hall]}}\n")
    assert h.send(now=0, level="912").new_signal.lamps == {"hall"}  # type: ignore[union-attr]
    assert h.send(now=0, level="911").new_signal.lamps == {"desk", "hall"}  # type: ignore[union-attr]


def at(day: int, hour: int, minute: int = 0) -> float:
    """Epoch seconds of a local Berlin time in the week of Monday 2026-11-23."""
    return datetime(2026, 11, 23 + day, hour, minute, tzinfo=BERLIN).timestamp()


QUIET = ("guards: {quiet_hours: {start: '22:00', end: '07:00', days: [mon, tue, wed, thu, fri],"
         " timezone: Europe/Berlin}}\n")


@pytest.mark.parametrize(("when", "level", "outcome"), [
    (at(0, 21, 59), "912", "shown"),
    (at(0, 22, 0), "912", "quiet"),
    (at(1, 3, 0), "912", "quiet"),        # Monday night's window runs into Tuesday
    (at(1, 7, 0), "912", "shown"),
    (at(0, 23, 0), "911", "shown"),       # 911 passes quiet hours by default
    (at(0, 23, 0), "door", "quiet"),
    (at(5, 3, 0), "912", "quiet"),        # Saturday 03:00 still belongs to Friday night
    (at(5, 23, 0), "912", "shown"),       # no window starts on Saturday
    (at(6, 3, 0), "912", "shown"),
])
def test_quiet_hours_across_midnight_with_per_level_bypass(when: float, level: str, outcome: str) -> None:
    assert Harness(QUIET).send(now=when, level=level).outcome.value == outcome


def test_a_level_can_be_given_the_quiet_hours_bypass() -> None:
    h = Harness(QUIET + "levels: {door: {quiet_hours_bypass: true}}\n")
    assert h.send(now=at(0, 23), level="door").outcome is Outcome.SHOWN


def test_duplicates_do_not_use_up_the_rate_limit() -> None:
    h = Harness()
    for i in range(20):
        h.send(now=i * 0.1, title="same", sender="alertmanager")
    assert h.send(now=2.5, title="other", sender="alertmanager").outcome is Outcome.SHOWN


def test_memory_of_old_keys_and_idle_senders_is_dropped() -> None:
    h = Harness("guards: {rate_limit: {per_source: null}}\n")
    for i in range(12_000):  # a new sender with a new key every second for 3 hours 20 minutes
        assert h.send(now=float(i), title=f"t{i}", sender=f"s{i}").outcome is Outcome.SHOWN
        h.active.clear()  # each hold ends before the next event
        assert len(h.router.last_seen) + len(h.router.buckets) <= 10_000  # not 24,000
    h.router.forget(12_000)
    assert len(h.router.last_seen) == 119  # keys seen within the 2-minute dedup window: t > 11880
    assert len(h.router.buckets) == 29  # senders whose bucket has not refilled in 30 s: t > 11970


def test_an_event_can_name_its_lamps_for_a_test() -> None:
    h = Harness("levels: {912: {lamps: [desk]}}\n")
    assert h.send(now=0, level="912", title="a", lamps=("hall",)).new_signal.lamps == {"hall"}  # type: ignore[union-attr]


def test_a_keyed_alert_repeated_later_stays_one_incident_until_it_resolves() -> None:
    h = Harness()
    first = h.send(now=0, level="911", title="HighLatency", key="fp-1", sender="am")
    h.active.clear()  # the 10 s hold ended long ago
    repeats = [h.send(now=t, level="911", title="HighLatency", key="fp-1", sender="am") for t in (360, 4 * 3600)]
    assert first.outcome is Outcome.SHOWN
    assert [v.outcome for v in repeats] == [Outcome.DEDUPLICATED, Outcome.DEDUPLICATED]
    assert repeats[0].reasons == ("same key seen 6m ago (until it is resolved)",)
    h.send(now=5 * 3600, level="911", title="HighLatency", key="fp-1", status="resolved")
    assert h.send(now=5 * 3600 + 1, level="911", title="HighLatency", key="fp-1", sender="am").outcome is Outcome.SHOWN
    h.active.clear()
    assert h.send(now=30 * 3600, level="911", title="HighLatency", key="fp-1", sender="am").outcome is Outcome.SHOWN
