"""Which rooms a signal goes to: the room's levels and quiet hours, and the person it follows.

Pure functions of (signals, configuration, whereabouts, now); the hub re-runs them on every
change and at every deadline (a presence that settles or goes stale, a quiet-hours edge).

- A room takes a level if its `levels:` lists it (no list: every level) and the signal
  names the room among its outputs (a level's `lamps:` may name rooms; none named: all).
- A room's quiet hours keep levels without the quiet-hours bypass dark there.
- A signal whose level a person's `levels:` lists follows that person: it goes to the room
  they are in, or to every room of theirs while that is unknown or stale. A level no person
  claims (the 911 by default) is everyone's: it goes to every room that takes it.

A presence report is a word (an MQTT payload, a Home Assistant entity's state) that names a
room through the presence's `rooms:` table, or is the name of one of the person's rooms;
any other word ("not_home", an area without a room) means: in no known room.

Presence has hysteresis: a report of a new room, or of no known room, counts once it has
stood for `stay` seconds (a phone that flickers between two rooms does not drag the lamp
along); the first report counts at once; no report for `stale_after` makes the room unknown
again, and the next report counts at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from lamplighter.config import PersonConfig, RoomConfig
from lamplighter.model import Level, Signal
from lamplighter.rules.quiet import in_quiet_hours


@dataclass(frozen=True)
class Whereabouts:
    """What the presence reports said about one person."""

    room: str | None  # the room they count as being in (None: not in a known room)
    reported_at: float  # the last report, of any room
    moving_to: str | None = None  # a newer report, not yet stood for `stay` (None: leaving for no known room)
    moving_since: float | None = None  # when that report came (None: no move under way)


def reported_room(word: str, person: PersonConfig) -> str | None:
    """The room of the person's that a presence report names, None for any other word."""
    mapped = person.presence.rooms.get(word, word) if person.presence is not None else word
    return mapped if mapped in person.rooms else None


def observe(before: Whereabouts | None, room: str | None, now: float, stay: float, stale_after: float) -> Whereabouts:
    """A presence report: the same room refreshes; a first report (or one after a stale one) counts at once;
    another room waits."""
    if before is not None and now - before.reported_at >= stale_after:
        before = None
    if before is not None and before.moving_since is not None and now - before.moving_since >= stay:
        before = Whereabouts(before.moving_to, before.reported_at)  # the move had settled
    if before is None or (before.room is None and before.moving_since is None):
        return Whereabouts(room, now)
    if room == before.room:
        return Whereabouts(room, now)
    if before.moving_since is not None and room == before.moving_to:
        return Whereabouts(before.room, now, room, before.moving_since)
    return Whereabouts(before.room, now, room, now)


def where(seen: Whereabouts | None, now: float, stay: float, stale_after: float) -> str | None:
    """The room a person is in now; None when unknown or stale."""
    if seen is None or now - seen.reported_at >= stale_after:
        return None
    if seen.moving_since is not None and now - seen.moving_since >= stay:
        return seen.moving_to
    return seen.room


def presence_deadline(seen: Whereabouts | None, now: float, stay: float, stale_after: float) -> float | None:
    """The next moment `where` may answer differently (a move settles, a report goes stale)."""
    if seen is None:
        return None
    moments = [seen.reported_at + stale_after]
    if seen.moving_since is not None:
        moments.append(seen.moving_since + stay)
    return min((t for t in moments if t > now), default=None)


@dataclass(frozen=True)
class RoomPlan:
    """The rooms, levels and people of a hub: everything routing needs besides the signals."""

    rooms: Mapping[str, RoomConfig]
    levels: Mapping[str, Level]
    people: Mapping[str, PersonConfig]

    def follows(self, level: str) -> list[str]:
        """The people a level follows."""
        return [name for name, person in self.people.items() if level in person.levels]


def rooms_for(signal: Signal, plan: RoomPlan, present: Mapping[str, str | None], now: float) -> frozenset[str]:
    """The rooms that show `signal` now (`present`: the room each person is in, None when unknown)."""
    taking = {room for room, config in plan.rooms.items() if room in signal.lamps
              and (config.levels is None or signal.level in config.levels)}
    people = plan.follows(signal.level)
    if people:
        taking &= {room for person in people for room in _rooms_of(plan.people[person], present.get(person))}
    level = plan.levels.get(signal.level)
    bypass = level is not None and level.quiet_hours_bypass
    return frozenset(room for room in taking if bypass or not in_quiet_hours(plan.rooms[room].quiet_hours, now))


def _rooms_of(person: PersonConfig, present: str | None) -> list[str]:
    """Where a person's signals go: the room they are in, else every room of theirs."""
    return [present] if present in person.rooms else list(person.rooms)


def signals_per_room(signals: Iterable[Signal], plan: RoomPlan, present: Mapping[str, str | None],
                     now: float) -> dict[str, list[Signal]]:
    """Each room's visible signals now."""
    shown: dict[str, list[Signal]] = {room: [] for room in plan.rooms}
    for signal in signals:
        if signal.visible_at(now):
            for room in rooms_for(signal, plan, present, now):
                shown[room].append(signal)
    return shown
