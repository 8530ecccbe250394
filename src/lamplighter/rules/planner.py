"""The lamp planner: what one lamp's controller does next, as a pure function of time.

    step(memory, desired, report, now, traits) -> Step(command or None, memory, wake_at)

`memory` is everything the controller remembers about its device (the restore snapshot,
what it sent, when it may send again, when to read a new look back, when to check an idle
lamp, how often it failed). `desired` is the reconcile winner now. `report` is how the last
command went. The async shell (service/lamp.py) only runs the command against the driver
and waits until `wake_at` or a change; every deadline lives here, so the whole behaviour is
a table under any clock:

- restore: the snapshot is read before the first signal's look is sent, never overwritten
  by a second signal, and dropped once the lamp is back to it (off stays off) and, where the
  device can say, has been read back so;
- pacing: at most one `Apply` per `min_interval`; only the latest desired look is sent;
- calm: a light changes its look at most once per `calm_interval`, unless a higher-priority
  signal takes it (a 911 is never held back);
- effects a device lacks are drawn as solid frames (rules/effects.py); sirens never blink;
- read-back: where the device can say (`verify_after`), a new look is read back once and
  sent once more if the device shows something else;
- push: a device that tells its state by itself (`pushes_state`: WLED's websocket, the Hue
  event stream, Home Assistant's websocket, Zigbee2MQTT's state topic) keeps `known`
  current, and the snapshot is taken from it, so no read stands in front of the first
  alert; a push that may predate the last command (it does not match what was sent and
  comes within `push_settle` of it) is not believed, and without a fresh one the snapshot
  is read as for any device;
- health: an idle lamp is read every `health_interval`; a failure marks it offline and it is
  retried with exponential backoff (lamplighter.backoff) until a read succeeds, then put in
  the state it should show.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from lamplighter.backoff import delay
from lamplighter.model import Effect, LampState, Signal
from lamplighter.rules.delivery import describe, reached
from lamplighter.rules.effects import Frames, emulation
from lamplighter.rules.reconcile import Desired


class Why(StrEnum):
    """Why a lamp's state is read."""

    CONNECT = "connect"  # the first contact: what does it show before we touch it?
    SNAPSHOT = "snapshot"  # a signal is about to take it: remember what to restore
    VERIFY = "verify"  # did the new look arrive?
    CHECK = "check"  # is the idle (or offline) lamp there, and still in its state?


@dataclass(frozen=True)
class Read:
    why: Why


@dataclass(frozen=True)
class Apply:
    frame: LampState  # what the device shows from now on (an emulated effect's current frame)
    showing: Signal | None  # the signal behind it; None when the lamp goes back to its snapshot
    new_look: bool = False  # the first frame of a look: read it back afterwards


Command = Read | Apply


@dataclass(frozen=True)
class Done:
    """The command succeeded; `state` is what a Read returned."""

    command: Command
    state: LampState | None = None


@dataclass(frozen=True)
class Failed:
    """The device did not answer, or refused; `error` says how, for a person."""

    command: Command
    error: str


Report = Done | Failed


@dataclass(frozen=True)
class Traits:
    """What the planner needs to know about a device: its pace and what it can do."""

    min_interval: float = 0.1
    calm_interval: float = 1.0
    verify_after: float | None = 0.5
    health_interval: float = 10.0
    native_effects: frozenset[Effect] = frozenset({Effect.SOLID})
    tells_signal: bool = False
    siren: bool = False
    backoff_first: float = 1.0
    pushes_state: bool = False
    push_settle: float = 0.5  # a push this soon after a command may describe the state before it


@dataclass(frozen=True)
class Memory:
    """One lamp's controller state. Times are on the service clock (epoch seconds)."""

    contacted: bool = False  # a read has succeeded at least once
    online: bool = True
    error: str = ""  # why it is offline
    unreached: str = ""  # why it does not show what it was sent, when it can say so
    failures: int = 0  # failed commands in a row
    retry_at: float | None = None  # while offline: the next attempt
    snapshot: LampState | None = None  # what to restore once no signal wants the lamp
    look: LampState | None = None  # the look being shown or drawn
    look_for: Signal | None = None  # the signal behind `look`
    actual: LampState | None = None  # the look the lamp shows, as far as we know (None: unknown)
    sent: LampState | None = None  # the frame the device was last told, or read to show
    sent_for: int | None = None  # the event id behind `sent`
    showing: Signal | None = None  # the signal behind what the lamp shows
    look_since: float = 0.0  # when the current look started (calm interval, effect frames)
    frames: Frames | None = None  # the emulated effect of the current look
    send_at: float = float("-inf")  # pacing: no Apply before this
    verify_at: float | None = None  # read the new look back then
    corrected: bool = False  # the look was sent again once after a read-back
    check_at: float = float("-inf")  # read the idle lamp then
    known: LampState | None = None  # what a pushing device last told by itself, while that is current
    settled_at: float = float("-inf")  # pushes before this may predate the last command


@dataclass(frozen=True)
class Step:
    command: Command | None
    memory: Memory
    wake_at: float | None  # call step again by then, even if nothing changes


def step(memory: Memory, desired: Desired, report: Report | None, now: float, traits: Traits) -> Step:
    """Take in how the last command went, then decide the next one (or when to look again)."""
    if report is not None:
        memory = observe(memory, report, now, traits)
    return plan(memory, desired, now, traits)


# ---- taking in a report --------------------------------------------------------------------


def observe(memory: Memory, report: Report, now: float, traits: Traits) -> Memory:
    """The memory after a command went as `report` says."""
    if isinstance(report, Failed):
        return _failed(memory, report.error, now, traits)
    memory = replace(memory, online=True, error="", failures=0, retry_at=None,
                     check_at=now + traits.health_interval)
    command = report.command
    if isinstance(command, Apply):
        return _applied(memory, command, now, traits)
    assert report.state is not None, "a successful read returns a state"
    if command.why is Why.VERIFY:
        return _verified(memory, report.state, traits)
    if command.why is Why.CHECK and memory.sent is not None and _shows(memory.sent, report.state, traits):
        return memory  # still showing what it was told (give or take the device's rounding)
    memory = replace(memory, contacted=True, sent=report.state, actual=report.state)
    return replace(memory, snapshot=report.state) if command.why is Why.SNAPSHOT else memory


def heard(memory: Memory, state: LampState | None, now: float, traits: Traits) -> Memory:
    """The memory after a pushing device told its state (None: it can no longer tell, e.g. its stream broke)."""
    if not traits.pushes_state:
        return memory
    if state is None:  # the stream broke: is the device still there? Look now rather than at the next check
        return replace(memory, known=None, check_at=min(memory.check_at, now))
    if now < memory.settled_at and not (memory.sent and _shows(memory.sent, state, traits)):
        return memory  # may describe the state before our last command
    return replace(memory, known=state)


def _shows(sent: LampState, shown: LampState, traits: Traits) -> bool:
    """Whether a device told `sent` and read as `shown` shows it to the eye (a siren: sounding or not)."""
    return sent.on == shown.on if traits.siren else reached(sent, shown)


def _failed(memory: Memory, error: str, now: float, traits: Traits) -> Memory:
    failures = memory.failures + 1
    return replace(memory, online=False, error=error, failures=failures, actual=None, sent=None, sent_for=None,
                   verify_at=None, known=None, retry_at=now + delay(failures, traits.backoff_first))


def _applied(memory: Memory, command: Apply, now: float, traits: Traits) -> Memory:
    verify_at = memory.verify_at
    if command.new_look and traits.verify_after is not None:
        verify_at = now + traits.verify_after
    return replace(memory, sent=command.frame, sent_for=command.showing.event_id if command.showing else None,
                   actual=memory.look, showing=command.showing, send_at=now + traits.min_interval,
                   verify_at=verify_at, known=None, settled_at=now + traits.push_settle)


def _verified(memory: Memory, shown: LampState, traits: Traits) -> Memory:
    sent = memory.sent
    memory = replace(memory, verify_at=None)
    if sent is None:
        return memory
    if _shows(sent, shown, traits):
        return replace(memory, unreached="", corrected=False)
    memory = replace(memory, unreached=f"was sent {describe(sent)} but shows {describe(shown)}")
    if memory.corrected:
        return memory
    return replace(memory, corrected=True, sent=shown, actual=shown)  # sent once more, and read back again


# ---- deciding the next command ---------------------------------------------------------------


def plan(memory: Memory, desired: Desired, now: float, traits: Traits) -> Step:
    """The next command for the device, or none and when to look again."""
    if not memory.online or not memory.contacted:
        if memory.retry_at is not None and now < memory.retry_at:
            return Step(None, memory, memory.retry_at)
        return Step(Read(Why.CHECK if memory.contacted else Why.CONNECT), memory, None)
    if desired.showing is not None and memory.snapshot is None:
        if memory.known is None:
            return Step(Read(Why.SNAPSHOT), memory, None)
        known = memory.known  # the device told it by itself: no read before the alert
        memory = replace(memory, snapshot=known, sent=known, actual=known)
    if memory.verify_at is not None and now >= memory.verify_at:
        return Step(Read(Why.VERIFY), memory, None)
    memory, held_until = _choose_look(memory, desired, now, traits)
    command, frame_at = _next_frame(memory, now, traits)
    if command is None and memory.actual == memory.look:
        memory = replace(memory, showing=memory.look_for)  # the same look for another signal
    if command is not None and now < memory.send_at:
        return Step(None, memory, _earliest(memory.send_at, held_until, memory.verify_at))
    if command is None and held_until is None and _restored(memory, desired):
        memory = replace(memory, snapshot=None)  # the next signal takes a new snapshot
    if command is None and now >= memory.check_at:
        return Step(Read(Why.CHECK), memory, None)
    return Step(command, memory, _earliest(held_until, frame_at, memory.verify_at, memory.check_at))


def _restored(memory: Memory, desired: Desired) -> bool:
    """Back as it was before the first signal, as far as the device can say: the snapshot has served.
    A restore the device did not reach keeps the snapshot, so the next signal does not take the wrong one."""
    return desired.showing is None and memory.snapshot is not None and memory.actual == memory.snapshot \
        and memory.verify_at is None and not memory.unreached


def _choose_look(memory: Memory, desired: Desired, now: float, traits: Traits) -> tuple[Memory, float | None]:
    """Start the desired look unless the calm interval holds it back; returns the hold's end, if any."""
    wanted = desired.state
    if wanted is None or wanted == memory.look:
        return replace(memory, look_for=desired.showing), None
    calm_until = memory.look_since + traits.calm_interval
    calm = memory.actual is not None and traits.calm_interval > 0 and not _outranks(desired.showing, memory.showing)
    if calm and now < calm_until:
        return memory, calm_until
    native = frozenset(Effect) if traits.siren else traits.native_effects
    return replace(memory, look=wanted, look_for=desired.showing, look_since=now, corrected=False,
                   frames=emulation(wanted, native, traits.min_interval)), None


def _next_frame(memory: Memory, now: float, traits: Traits) -> tuple[Apply | None, float | None]:
    """The Apply the device needs now (if any), and when the next emulated frame is due."""
    look = memory.look
    if look is None:
        return None, None
    frame, frame_at = look, None
    if memory.frames is not None:
        frame, next_in = memory.frames.at(now - memory.look_since)
        frame_at = now + next_in
    signal_id = memory.look_for.event_id if memory.look_for else None
    retold = traits.tells_signal and signal_id != memory.sent_for
    new_look = memory.actual != look
    if frame == memory.sent and not new_look and not retold:
        return None, frame_at
    return Apply(frame, memory.look_for, new_look=new_look), frame_at


def _outranks(new: Signal | None, current: Signal | None) -> bool:
    """A signal takes a lamp at once from a lower one, or from no signal at all."""
    return new is not None and (current is None or new.priority > current.priority)


def _earliest(*moments: float | None) -> float | None:
    return min((m for m in moments if m is not None), default=None)
