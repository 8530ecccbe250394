"""The hub-and-rooms protocol over MQTT: topics, messages, and the agent's "apply if newer" rule.

Topics, under `lamplighter/<home>/rooms/<room>/`:

    state    hub -> agent   retained RoomState: the room's whole desired state (QoS 1); the
                            broker also queues each one in the agent's persistent session
                            while it is away, and delivers it live (not retained) when it is not
    acks     agent -> hub   Ack: someone in the room acknowledged an event (QoS 1)
    applied  agent -> hub   Applied: the agent shows the state with this sequence number (QoS 1)
    health   agent -> hub   retained Health: the agent's lamps; the broker publishes the agent's
                            will (online false) when its connection dies

A RoomState carries a sequence number that only grows (the hub's generation times 2**32 plus
a counter; the generation is the hub's start time in seconds, or one more than the last
start's, so that a hub whose journal was lost still publishes newer states than before) and
every active signal with its ABSOLUTE expiry time, so a room converges to the current truth
from any one message instead of replaying history. The agent applies a state only if its
sequence number is greater than the one it applied last (`newer`): QoS 1 duplicates, the
retained copy of a state it already has, and a stale retained message are ignored. It then
drops every signal whose expiry has passed (`live`): a door event that expired while the
room was offline is never shown; a 911 that is still active is.

Clock skew: expiries are judged on the hub's clock as the agent estimates it: its own clock
plus an offset, the largest (published_at - received_at) over the last live messages
(`ClockOffset`). A message that was delayed (queued while the agent was offline, or slow)
only lowers that difference, so the largest is the one closest to the true offset; the
error is at most the one-way delay of the fastest recent message (milliseconds on a LAN, well
under a second over the internet), and the agent reports the offset in its health so the
hub can show it. Until a live message arrives the offset is 0 (the clocks are assumed
NTP-synchronised).

Every message is untrusted input: bounded in size and depth (lamplighter.untrusted) before it
is parsed, then validated (names, lengths, list sizes, finite numbers).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from lamplighter.errors import PayloadError
from lamplighter.model import MAX_EVENT_ID, Effect, LampState, Signal
from lamplighter.untrusted import load_json

ROOT = "lamplighter"
MAX_MESSAGE_BYTES = 256 * 1024  # 64 signals with long titles fit many times over
MAX_SIGNALS = 64  # a room with more active signals than this shows the highest priority ones
MAX_LAMPS = 64
GENERATION_BITS = 32  # seq = generation << 32 | counter: a restarted hub always publishes newer states
OFFSET_SAMPLES = 16  # live messages the clock offset is estimated from

NAME_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"  # no '/', '+' or '#': a name is one topic level
Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
Text = Annotated[str, StringConstraints(max_length=300)]
Color = Annotated[str, StringConstraints(pattern=r"^#[0-9a-f]{6}$")]
Moment = Annotated[float, Field(ge=0, le=1e11)]  # epoch seconds, finite (allow_inf_nan is off)
EventId = Annotated[int, Field(ge=1, le=MAX_EVENT_ID)]
Seq = Annotated[int, Field(ge=0, le=2**63 - 1)]


class Kind(StrEnum):
    """The last level of a room's topic: what the message is."""

    STATE = "state"
    ACKS = "acks"
    APPLIED = "applied"
    HEALTH = "health"


FROM_AGENTS = (Kind.ACKS, Kind.APPLIED, Kind.HEALTH)


@dataclass(frozen=True)
class Topics:
    """The topic layout of one home."""

    home: str

    @property
    def base(self) -> str:
        return f"{ROOT}/{self.home}/rooms"

    def of(self, room: str, kind: Kind) -> str:
        return f"{self.base}/{room}/{kind.value}"

    def from_agents(self) -> list[str]:
        """What the hub subscribes to: every room's acks, receipts and health."""
        return [f"{self.base}/+/{kind.value}" for kind in FROM_AGENTS]

    def to_agent(self, room: str) -> list[str]:
        """What an agent subscribes to: its room's state (retained, and every new one as it is published)."""
        return [self.of(room, Kind.STATE)]

    def parse(self, topic: str) -> tuple[str, Kind] | None:
        """(room, kind) of one of this home's room topics; None for anything else."""
        prefix = self.base + "/"
        if not topic.startswith(prefix):
            return None
        room, _, kind = topic[len(prefix):].partition("/")
        if not room or kind not in Kind.__members__.values():
            return None
        return room, Kind(kind)


class _Message(BaseModel):
    # A newer peer may add fields: ignore them; numbers must be finite.
    model_config = ConfigDict(extra="ignore", frozen=True, allow_inf_nan=False)


class RoomSignal(_Message):
    """One active signal as a room shows it: its look and its absolute expiry (None: until acknowledged)."""

    event_id: EventId
    level: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    title: Text
    color: Color
    brightness: int = Field(ge=0, le=100)
    effect: Effect
    priority: int = Field(ge=-(2**31), le=2**31)
    started_at: Moment
    expires_at: Moment | None


class RoomState(_Message):
    """A room's whole desired state at one moment of the hub."""

    room: Name
    seq: Seq
    published_at: Moment
    signals: list[RoomSignal] = Field(default_factory=list, max_length=MAX_SIGNALS)


class Ack(_Message):
    """Someone in the room acknowledged an event."""

    event_id: EventId
    by: Annotated[str, StringConstraints(max_length=100)]
    at: Moment


class Applied(_Message):
    """The agent shows the state with sequence number `seq` (the event ids its lamps show)."""

    seq: Seq
    at: Moment
    showing: list[EventId] = Field(default_factory=list, max_length=MAX_SIGNALS)


class LampHealth(_Message):
    name: Name
    online: bool
    error: Text = ""


class Health(_Message):
    """An agent's heartbeat (online) or its will (offline)."""

    online: bool
    at: Moment = 0.0
    lamps: list[LampHealth] = Field(default_factory=list, max_length=MAX_LAMPS)
    applied_seq: Seq | None = None
    clock_offset: float = Field(default=0.0, ge=-1e9, le=1e9)


M = TypeVar("M", bound=_Message)


def decode(kind: type[M], payload: bytes | bytearray) -> M:
    """Parse a message within the bounds; PayloadError names what is wrong with it."""
    data = load_json(bytes(payload), max_bytes=MAX_MESSAGE_BYTES)
    try:
        return kind.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "(top)"
        raise PayloadError(f"not a {kind.__name__}: {where}: {first['msg']}") from None


def encode(message: _Message) -> bytes:
    return message.model_dump_json().encode()


# ---- the agent's rules ----------------------------------------------------------------------------


def sequence(generation: int, counter: int) -> int:
    """The sequence number of the `counter`-th state a hub of this generation publishes."""
    return (generation << GENERATION_BITS) | (counter & ((1 << GENERATION_BITS) - 1))


def newer(applied: int | None, state: RoomState) -> bool:
    """Apply this state? Only if it is newer than what was applied (duplicates and stale ones are not)."""
    return applied is None or state.seq > applied


def live(state: RoomState, hub_now: float) -> list[RoomSignal]:
    """The signals of a state that have not expired by `hub_now` (the hub's clock as the agent estimates it)."""
    return [s for s in state.signals if s.expires_at is None or s.expires_at > hub_now]


class ClockOffset:
    """How far the hub's clock is ahead of ours, from the freshest of the recent live messages."""

    def __init__(self) -> None:
        self._samples: deque[float] = deque(maxlen=OFFSET_SAMPLES)

    def observe(self, published_at: float, received_at: float) -> None:
        self._samples.append(published_at - received_at)

    @property
    def seconds(self) -> float:
        return max(self._samples, default=0.0)


# ---- signals on the wire --------------------------------------------------------------------------


def room_signal(signal: Signal) -> RoomSignal:
    look = signal.look
    return RoomSignal(event_id=signal.event_id, level=signal.level, title=signal.title[:300], color=look.color,
                      brightness=look.brightness, effect=look.effect, priority=signal.priority,
                      started_at=signal.started_at, expires_at=signal.expires_at)


def to_signal(shown: RoomSignal, lamps: frozenset[str], offset: float = 0.0) -> Signal:
    """The signal an agent hands its lamp controllers: on every lamp of the room, its times moved
    from the hub's clock to the agent's (`offset`: how far the hub's clock is ahead)."""
    look = LampState(on=True, color=shown.color, brightness=shown.brightness, effect=shown.effect)
    expires_at = None if shown.expires_at is None else shown.expires_at - offset
    return Signal(event_id=shown.event_id, level=shown.level, key=f"hub:{shown.event_id}", title=shown.title,
                  priority=shown.priority, look=look, lamps=lamps, started_at=shown.started_at - offset,
                  expires_at=expires_at)


class _Ranked(Protocol):
    @property
    def priority(self) -> int: ...
    @property
    def started_at(self) -> float: ...
    @property
    def event_id(self) -> int: ...


R = TypeVar("R", bound=_Ranked)


def strongest(signals: list[R]) -> list[R]:
    """At most MAX_SIGNALS (signals or their wire form), the highest priority and newest first."""
    ranked = sorted(signals, key=lambda s: (s.priority, s.started_at, s.event_id), reverse=True)
    return ranked[:MAX_SIGNALS]
