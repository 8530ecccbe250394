"""The hub-and-rooms wire protocol: topics, bounded messages, and the agent's "apply if newer" rule."""

from __future__ import annotations

import json

import pytest

from lamplighter.errors import PayloadError
from lamplighter.model import Effect, LampState, Signal
from lamplighter.rooms.protocol import (
    MAX_SIGNALS,
    Ack,
    Applied,
    ClockOffset,
    Health,
    Kind,
    RoomSignal,
    RoomState,
    Topics,
    decode,
    encode,
    live,
    newer,
    room_signal,
    sequence,
    strongest,
    to_signal,
)

T0 = 1_800_000_000.0
RED = LampState(on=True, color="#ff0000")


def shown(event_id: int, expires_at: float | None, priority: int = 300) -> RoomSignal:
    return RoomSignal(event_id=event_id, level="911", title=f"event {event_id}", color="#ff0000", brightness=100,
                      effect=Effect.SOLID, priority=priority, started_at=T0, expires_at=expires_at)


def state(seq: int, *signals: RoomSignal) -> RoomState:
    return RoomState(room="study", seq=seq, published_at=T0, signals=list(signals))


@pytest.mark.parametrize(("topic", "parsed"), [
    ("lamplighter/home/rooms/study/acks", ("study", Kind.ACKS)),
    ("lamplighter/home/rooms/study/state", ("study", Kind.STATE)),
    ("lamplighter/home/rooms/study/health", ("study", Kind.HEALTH)),
    ("lamplighter/home/rooms/study/other", None),
    ("lamplighter/home/rooms//acks", None),
    ("lamplighter/elsewhere/rooms/study/acks", None),
    ("frigate/events", None),
])
def test_topics_parse_only_this_homes_room_topics(topic: str, parsed: tuple[str, Kind] | None) -> None:
    assert Topics("home").parse(topic) == parsed


def test_topic_layout() -> None:
    topics = Topics("home")
    assert topics.of("study", Kind.STATE) == "lamplighter/home/rooms/study/state"
    assert topics.to_agent("study") == ["lamplighter/home/rooms/study/state"]
    assert topics.from_agents() == ["lamplighter/home/rooms/+/acks", "lamplighter/home/rooms/+/applied",
                                    "lamplighter/home/rooms/+/health"]


@pytest.mark.parametrize(("applied", "seq", "apply"), [
    (None, 0, True),        # nothing applied yet: anything
    (5, 6, True),           # newer
    (5, 5, False),          # a QoS 1 duplicate, or the retained copy of a change already applied
    (5, 4, False),          # older: a stale retained message, a late change
    (sequence(1, 99), sequence(2, 0), True),   # a restarted hub (next generation) starts over at 0: still newer
])
def test_apply_only_if_newer(applied: int | None, seq: int, apply: bool) -> None:
    assert newer(applied, state(seq)) is apply


@pytest.mark.parametrize(("expiries", "now", "kept"), [
    ([T0 + 10], T0 + 5, [1]),                 # still held
    ([T0 + 10], T0 + 10, []),                 # expired exactly now
    ([T0 + 10, None], T0 + 3600, [2]),        # an hour offline: the door is gone, the 911 until ack stays
    ([T0 + 7200, T0 + 60], T0 + 3600, [1]),
])
def test_live_drops_what_expired(expiries: list[float | None], now: float, kept: list[int]) -> None:
    room = state(1, *(shown(i + 1, at) for i, at in enumerate(expiries)))
    assert [s.event_id for s in live(room, now)] == kept


@pytest.mark.parametrize(("samples", "offset"), [
    ([], 0.0),
    ([(T0 + 2.0, T0)], 2.0),                        # the hub is 2 s ahead
    ([(T0 + 2.0, T0 + 0.5), (T0 + 2.0, T0)], 2.0),  # a delayed copy lowers the difference: the largest wins
    ([(T0 - 3600, T0), (T0 - 1.0, T0)], -1.0),      # a change queued for an hour says nothing about the clocks
])
def test_clock_offset_takes_the_freshest_message(samples: list[tuple[float, float]], offset: float) -> None:
    clock = ClockOffset()
    for published, received in samples:
        clock.observe(published, received)
    assert clock.seconds == offset


def test_signal_round_trip_moves_times_to_the_agents_clock() -> None:
    signal = Signal(event_id=7, level="door", key="k", title="front door", priority=200, look=RED,
                    lamps=frozenset({"hub-lamp"}), started_at=T0, expires_at=T0 + 10)
    back = to_signal(room_signal(signal), frozenset({"desk"}), offset=2.0)
    assert (back.event_id, back.look, back.lamps) == (7, RED, frozenset({"desk"}))
    assert (back.started_at, back.expires_at) == (T0 - 2.0, T0 + 8.0)


def test_messages_round_trip() -> None:
    for message in (state(3, shown(1, None)), Ack(event_id=4, by="ann", at=T0), Applied(seq=3, at=T0, showing=[1]),
                    Health(online=True, at=T0, lamps=[], applied_seq=3)):
        assert decode(type(message), encode(message)) == message


def test_unknown_fields_are_ignored_for_newer_peers() -> None:
    assert decode(Ack, b'{"event_id": 4, "by": "ann", "at": 1, "button": "left"}').event_id == 4


@pytest.mark.parametrize(("kind", "payload", "named"), [
    (Ack, b"not json", "not valid JSON"),
    (Ack, b"[" * 100 + b"]" * 100, "nested deeper"),
    (Ack, b'{"event_id": 0, "by": "x", "at": 1}', "event_id"),
    (Ack, b'{"event_id": 1, "by": "x", "at": NaN}', "at"),
    (RoomState, json.dumps({"room": "a/b", "seq": 1, "published_at": 1}).encode(), "room"),
    (RoomState, json.dumps({"room": "a", "seq": -1, "published_at": 1}).encode(), "seq"),
    (RoomState, json.dumps({"room": "a", "seq": 1, "published_at": 1,
                            "signals": [{**shown(1, None).model_dump(), "color": "red"}]}).encode(), "color"),
    (RoomState, b'{"room": "a", "seq": 1, "published_at": 1, "pad": "' + b"x" * 300_000 + b'"}', "limit"),
])
def test_bad_messages_are_refused_naming_the_problem(kind: type, payload: bytes, named: str) -> None:
    with pytest.raises(PayloadError, match=named):
        decode(kind, payload)


def test_too_many_signals_is_refused_and_strongest_keeps_the_limit() -> None:
    many = [shown(i + 1, None, priority=i) for i in range(MAX_SIGNALS + 5)]
    with pytest.raises(PayloadError, match="signals"):
        decode(RoomState, json.dumps({"room": "a", "seq": 1, "published_at": 1,
                                      "signals": [s.model_dump() for s in many]}).encode())
    kept = strongest(many)
    assert len(kept) == MAX_SIGNALS and kept[0].priority == MAX_SIGNALS + 4
