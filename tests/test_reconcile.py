"""Reconcile as a table: (active signals, snapshot, now) -> what the lamp shows."""

import pytest

from lamplighter.model import LAMP_OFF, Effect, LampState, Signal
from lamplighter.rules.reconcile import expired, next_deadline, reconcile

RED = LampState(on=True, color="#ff0000")
YELLOW = LampState(on=True, color="#ffd000")
GREEN = LampState(on=True, color="#00ff00", effect=Effect.PULSE)
WARM = LampState(on=True, color="#ffd8a8", brightness=40)


def sig(event_id: int, look: LampState, priority: int, started: float, expires: float | None,
        lamps: frozenset[str] = frozenset({"desk"})) -> Signal:
    return Signal(event_id, str(priority), f"k{event_id}", f"t{event_id}", priority, look, lamps, started, expires)


s911 = sig(1, RED, 300, started=0, expires=10)
s912 = sig(2, YELLOW, 100, started=1, expires=30)
s912_newer = sig(3, GREEN, 100, started=2, expires=30)
door_forever = sig(4, GREEN, 200, started=5, expires=None)
hall_only = sig(5, RED, 300, started=0, expires=100, lamps=frozenset({"hall"}))

TABLE = [
    # signals,                  snapshot, now,  desired state, showing id
    ([],                          None,     0,    None,          None),   # never touched: leave the lamp alone
    ([],                          LAMP_OFF, 0,    LAMP_OFF,      None),   # off stays off
    ([],                          WARM,     0,    WARM,          None),   # colour and brightness come back
    ([s911],                      WARM,     5,    RED,           1),
    ([s911, s912],                WARM,     5,    RED,           1),      # 911 pre-empts 912
    ([s911, s912],                WARM,     10,   YELLOW,        2),      # 911's hold ended: 912 shows again
    ([s911, s912],                WARM,     30,   WARM,          None),   # all ended: restore
    ([s912, s912_newer],          WARM,     5,    GREEN,         3),      # equal priority: newest wins
    ([s911, door_forever],        LAMP_OFF, 10_000, GREEN,       4),      # until-ack signals never expire
    ([hall_only],                 WARM,     5,    WARM,          None),   # another lamp's signal
]


@pytest.mark.parametrize(("signals", "snapshot", "now", "state", "showing"), TABLE)
def test_reconcile_table(signals: list[Signal], snapshot: LampState | None, now: float,
                         state: LampState | None, showing: int | None) -> None:
    desired = reconcile(signals, "desk", snapshot, now)
    assert desired.state == state
    assert (desired.showing.event_id if desired.showing else None) == showing


def test_deadlines_and_expiry() -> None:
    signals = [s911, s912, door_forever]
    assert next_deadline(signals, now=0) == 10
    assert next_deadline(signals, now=10) == 30
    assert next_deadline(signals, now=30) is None
    assert expired(signals, now=10) == [s911]


def test_a_snoozed_signal_is_hidden_until_its_snooze_ends() -> None:
    snoozed = sig(6, RED, 300, started=0, expires=None)
    snoozed = Signal(**{**snoozed.__dict__, "snoozed_until": 60.0})
    assert reconcile([snoozed, s912], "desk", WARM, now=5).showing == s912
    assert reconcile([snoozed], "desk", WARM, now=59).state == WARM
    assert reconcile([snoozed], "desk", WARM, now=60).state == RED
    assert next_deadline([snoozed], now=5) == 60
