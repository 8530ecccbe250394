"""Routing to rooms and people, and presence with hysteresis, as tables under a fake clock."""

from __future__ import annotations

import pytest

from lamplighter.config import PersonConfig, PresenceConfig, QuietHoursConfig, RoomConfig
from lamplighter.model import DEFAULT_LEVELS, LampState, Signal
from lamplighter.rooms.routing import (
    RoomPlan,
    Whereabouts,
    observe,
    presence_deadline,
    reported_room,
    rooms_for,
    where,
)

T0 = 1_800_000_000.0  # 2027-01-15 08:00 UTC
STAY, STALE = 30.0, 900.0
ROOMS = ("study", "kitchen", "office")
ALL_DAY = QuietHoursConfig.model_validate({"start": "00:00", "end": "23:59", "timezone": "UTC"})
PLAN = RoomPlan(
    rooms={"study": RoomConfig(), "kitchen": RoomConfig(levels=["911", "door"]),
           "office": RoomConfig(quiet_hours=[ALL_DAY])},
    levels={level.name: level for level in DEFAULT_LEVELS},
    people={"ann": PersonConfig(rooms=["study", "kitchen"], levels=["door"])},
)


def signal(level: str, outputs: tuple[str, ...] = ROOMS) -> Signal:
    return Signal(event_id=1, level=level, key="k", title="t", priority=1, look=LampState(on=True),
                  lamps=frozenset(outputs), started_at=T0, expires_at=None)


@pytest.mark.parametrize(("level", "outputs", "ann_is_in", "rooms"), [
    ("911", ROOMS, None, {"study", "kitchen", "office"}),    # everyone's; bypasses the office's quiet hours
    ("912", ROOMS, None, {"study"}),                         # the kitchen does not take 912; the office is quiet
    ("912", ("kitchen", "office"), None, set()),             # the level names rooms that do not show it
    ("door", ROOMS, None, {"study", "kitchen"}),             # follows ann: where unknown, every room of hers
    ("door", ROOMS, "kitchen", {"kitchen"}),                 # ... and where she is, once known
    ("door", ROOMS, "office", {"study", "kitchen"}),         # a room not hers counts as unknown
    ("door", ("study",), "kitchen", set()),                  # her room does not show doors from this level
])
def test_rooms_for(level: str, outputs: tuple[str, ...], ann_is_in: str | None, rooms: set[str]) -> None:
    assert rooms_for(signal(level, outputs), PLAN, {"ann": ann_is_in}, T0) == rooms


def walk(*reports: tuple[float, str | None]) -> Whereabouts | None:
    seen = None
    for at, room in reports:
        seen = observe(seen, room, T0 + at, STAY, STALE)
    return seen


@pytest.mark.parametrize(("reports", "at", "room"), [
    ([], 0, None),                                           # never reported: unknown
    ([(0, "study")], 0, "study"),                            # the first report counts at once
    ([(0, "study"), (10, "kitchen")], 20, "study"),          # a move waits STAY seconds ...
    ([(0, "study"), (10, "kitchen")], 40, "kitchen"),        # ... then counts
    ([(0, "study"), (10, "kitchen"), (20, "study")], 45, "study"),   # flickering back cancels the move
    ([(0, "study"), (10, "kitchen"), (50, "study")], 60, "kitchen"), # back after the move settled: waits again
    ([(0, "study"), (10, "kitchen"), (50, "study")], 81, "study"),
    ([(0, "study")], STALE, None),                           # no report for STALE: unknown again
    ([(0, "study"), (800, "study")], STALE + 100, "study"),  # a repeated report keeps it fresh
    ([(0, "study"), (STALE + 5, "kitchen")], STALE + 6, "kitchen"),  # after a stale one, a report counts at once
    ([(0, "study"), (10, None)], 20, "study"),               # leaving for no known room waits STAY too ...
    ([(0, "study"), (10, None)], 40, None),                  # ... then: unknown
    ([(0, "study"), (10, None), (20, "study")], 45, "study"),        # a flicker to nowhere changes nothing
    ([(0, "study"), (10, None), (45, None)], 50, None),              # still nowhere
    ([(0, "study"), (10, None), (45, "kitchen")], 46, "kitchen"),    # from nowhere, a room counts at once
])
def test_presence_with_hysteresis(reports: list[tuple[float, str | None]], at: float, room: str | None) -> None:
    assert where(walk(*reports), T0 + at, STAY, STALE) == room


def test_presence_deadline_is_the_next_change() -> None:
    seen = walk((0, "study"), (10, "kitchen"))
    assert presence_deadline(seen, T0 + 11, STAY, STALE) == T0 + 10 + STAY
    assert presence_deadline(seen, T0 + 41, STAY, STALE) == T0 + 10 + STALE
    assert presence_deadline(None, T0, STAY, STALE) is None


ANN = PersonConfig(rooms=["study", "kitchen"], presence=PresenceConfig(
    hass="hass://token@ha.local:8123", entity="sensor.ann_phone_area",
    rooms={"Study": "study", "Kitchen": "kitchen", "home": "study"}))


@pytest.mark.parametrize(("word", "room"), [
    ("Study", "study"),          # a Bermuda area, through the table
    ("home", "study"),           # a person's zone, through the table
    ("kitchen", "kitchen"),      # a room of hers by its own name
    ("not_home", None),          # a zone without a room: in no known room
    ("Garden", None),            # an area without a room
    ("office", None),            # a room, but not hers
    ("", None),
])
def test_a_reported_word_names_a_room_of_the_person(word: str, room: str | None) -> None:
    assert reported_room(word, ANN) == room


def test_a_topic_without_a_table_takes_room_names() -> None:
    bob = PersonConfig(rooms=["study"], presence=PresenceConfig(topic="phones/bob/room"))
    assert (reported_room("study", bob), reported_room("Study", bob)) == ("study", None)
