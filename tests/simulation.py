"""A deterministic simulation of the whole service, the FoundationDB / TigerBeetle way.

On a VirtualTimeLoop (tests/virtual_time.py) the real Service runs with its real router,
journal (SQLite in a temporary directory), deadline task and lamp controllers, against
simulated devices (`SimLamp`) that have latency, go offline, answer slower than the device
deadline, show the wrong colour, and swallow cancellations. A seeded random stream drives
it: events of every level with a few keys (firing and resolved), acknowledgements, snoozes
(one signal and all), journal write failures, device faults and restarts from the journal.

After every step `check` verifies the invariants:
- nothing is active past its end (in memory, and in the journal unless it is failing);
- each reachable lamp that has settled shows the reconcile winner's look, or its own
  state from before the first signal once no signal wants it (off stays off);
- every accepted event is in the journal;
- no device got two commands closer together than its `min_interval`;
- stop returns within its bound, even while a device swallows the cancel.
A failure raises `Violation` naming the seed, the step and the invariant; the same seed
replays the same run exactly.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
from dataclasses import dataclass, field
from pathlib import Path

from lamplighter.drivers.base import Driver, LampUrl
from lamplighter.errors import DeviceOffline, StoreError
from lamplighter.model import LampState, Signal, make_event
from lamplighter.rules.reconcile import reconcile
from lamplighter.service import Service
from lamplighter.service.core import STOP_BOUND
from lamplighter.service.fleet import CLOSE_BOUND
from lamplighter.service.lamp import DEVICE_DEADLINE, SNAPSHOT_RETRY
from lamplighter.store import Store
from tests.conftest import make_config
from tests.virtual_time import LoopClock

SETTLE = 4.0  # seconds a lamp gets to show a change: pacing, calm interval, read-back, a resend
RESTART_SECONDS = 0.4  # `lamplighter run` from start to ready (bench/footprint.py)
FAULT_CALM = 70.0  # after a device fault ends: a health check, a backoff retry and SETTLE
LEVELS = ("911", "912", "door", "low")
KEYS = ("db", "api", "disk", "door")
CONFIG = """
lamps: {desk: 'sim://desk', hall: 'sim://hall'}
sirens: {bell: 'sim://bell'}
guards: {rate_limit: {per_sender: null, per_source: null}}
levels:  # one blinking level covers emulated effects; a blinking 911 too would make each week far slower
  '911': {hold: 5m, escalate_after: 90s, effect: solid}
  '912': {hold: 40s, effect: solid}
  door: {hold: 20s, effect: blink}
  low: {color: blue, priority: 10, hold: until_ack, lamps: [hall]}
"""
OWN_STATES = {"desk": LampState(on=True, color="#ffd8a8", brightness=40), "hall": LampState(on=False),
              "bell": LampState(on=False)}


class Violation(AssertionError):
    """An invariant failed; the message names the seed that reproduces it."""


@dataclass
class Faults:
    """What is wrong with one simulated device right now."""

    offline: bool = False
    hangs: bool = False  # answers slower than the controller's device deadline
    stuck: bool = False  # answers, but keeps showing what it showed whatever it is told
    swallow: bool = False  # swallows a cancellation that meets its I/O, as lifx-async can
    ended_at: float = float("-inf")  # when the last fault ended


class SimLamp(Driver):
    """A simulated device: seeded latency, faults the simulation switches, every command recorded."""

    scheme = "sim"
    min_interval = 0.1
    calm_interval = 1.0
    verify_after = 0.5
    health_interval = 60.0  # long idle stretches of simulated hours stay cheap

    def __init__(self, name: str, rng: random.Random) -> None:
        super().__init__(LampUrl.parse(f"sim://{name}"))
        self.name = name
        self.shown = OWN_STATES[name]
        self.told = OWN_STATES[name]  # what it shows once a fault is mended
        self.faults = Faults()
        self.applied_at: list[float] = []
        self._rng = rng

    async def apply(self, state: LampState, showing: Signal | None = None) -> None:
        await self._io()
        self.applied_at.append(asyncio.get_running_loop().time())
        self.told = state
        if not self.faults.stuck:
            self.shown = state

    async def read_state(self) -> LampState:
        await self._io()
        return self.shown

    async def _io(self) -> None:
        latency = DEVICE_DEADLINE * 3 if self.faults.hangs else self._rng.uniform(0.001, 0.05)
        try:
            await asyncio.sleep(latency)
        except asyncio.CancelledError:
            if not self.faults.swallow:
                raise
        if self.faults.offline:
            raise DeviceOffline(f"{self.name} did not answer")


class FlakyStore(Store):
    """The real journal, whose writes can be made to fail (a full disk) while `failing` is set.

    Without its fsyncs: the simulation restarts the service, it does not cut the power (the crash
    tests do), and twenty thousand fsyncs would be most of its run time."""

    failing = False

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self._db.execute("PRAGMA synchronous=OFF")

    def _transaction(self, statements):  # type: ignore[no-untyped-def]
        if self.failing:
            raise StoreError(f"cannot write to the store at {self.path}: database or disk is full")
        return super()._transaction(statements)

    def record_event(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        if self.failing:
            raise StoreError(f"cannot write to the store at {self.path}: database or disk is full")
        return super().record_event(*args, **kwargs)


@dataclass
class Figures:
    steps: int = 0
    events: int = 0
    accepted: int = 0
    checks: int = 0
    restarts: int = 0
    hours: float = 0.0
    commands: int = 0


@dataclass
class Simulation:
    seed: int
    state_dir: Path
    rng: random.Random = field(init=False)
    devices: dict[str, SimLamp] = field(init=False)
    service: Service = field(init=False)
    accepted: dict[int, str] = field(default_factory=dict)  # event id -> title
    figures: Figures = field(default_factory=Figures)
    store_fails_until: float = float("-inf")

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.devices = {name: SimLamp(name, self.rng) for name in OWN_STATES}

    async def run(self, hours: float) -> Figures:
        await self._start()
        start = self._now()
        try:
            while self._now() - start < hours * 3600:
                await self._step()
        finally:
            await self._stop()
        self.figures.hours = (self._now() - start) / 3600
        self.figures.commands = sum(len(d.applied_at) for d in self.devices.values())
        return self.figures

    # ---- the random stream ---------------------------------------------------------------------

    async def _step(self) -> None:
        self.figures.steps += 1
        await asyncio.sleep(self.rng.expovariate(1 / 300))  # quiet stretches: health checks, expiries
        roll = self.rng.random()
        if roll < 0.55:
            self._submit()
        elif roll < 0.65:
            self._acknowledge()
        elif roll < 0.70:
            self._snooze()
        elif roll < 0.80:
            self._device_fault()
        elif roll < 0.84:
            self._store_fault()
        elif roll < 0.87:
            await self._restart()
        else:
            self._heal()
        await asyncio.sleep(SETTLE)
        await self.check(f"step {self.figures.steps}")

    def _submit(self) -> None:
        level, key = self.rng.choice(LEVELS), self.rng.choice(KEYS)
        status = "resolved" if self.rng.random() < 0.25 else "firing"
        title = f"{level} {key} #{self.figures.events}"
        self.figures.events += 1
        try:
            receipt = self.service.submit(make_event(level, title, received_at=self._now(), key=f"{level}:{key}",
                                                     status=status, sender=self.rng.choice("abc")))
        except StoreError:
            return  # refused, and so not accepted: nothing to keep
        self.accepted[receipt.id] = title
        self.figures.accepted += 1

    def _acknowledge(self) -> None:
        if self.service.signals:
            event_id = self.rng.choice(sorted(self.service.signals))
            with contextlib.suppress(StoreError):  # the disk is full: the ack is refused, the signal stays
                self.service.acknowledge(event_id, by="sim")

    def _snooze(self) -> None:
        try:
            if self.rng.random() < 0.3:
                self.service.snooze_all(self.rng.uniform(10, 600), by="sim")
            elif self.rng.random() < 0.5:
                self.service.end_snooze()
            elif self.service.signals:
                self.service.snooze_signal(self.rng.choice(sorted(self.service.signals)), self.rng.uniform(5, 300))
        except StoreError:
            pass

    def _device_fault(self) -> None:
        device = self.devices[self.rng.choice(sorted(self.devices))]
        setattr(device.faults, self.rng.choice(("offline", "hangs", "stuck", "swallow")), True)

    def _heal(self) -> None:
        for device in self.devices.values():
            faults = device.faults
            if faults.offline or faults.hangs or faults.stuck or faults.swallow:
                device.faults = Faults(ended_at=self._now())
                device.shown = device.told  # mended, it shows what it was last told

    def _store_fault(self) -> None:
        """The disk is full for a while, then has room again (what is owed is written at a retry)."""
        store = self._store()
        store.failing = True
        self.store_fails_until = self._now() + self.rng.uniform(5, 120)
        asyncio.get_running_loop().call_at(self.store_fails_until, setattr, store, "failing", False)

    def _store(self) -> FlakyStore:
        store = self.service.store
        assert isinstance(store, FlakyStore)
        return store

    async def _restart(self) -> None:
        if self._now() < self.store_fails_until + SNAPSHOT_RETRY * 2:
            return  # a restart while the disk is full loses what could not be written (a lamp's snapshot):
            # no daemon can keep that, so the simulation restarts only once the journal takes writes again
        await self._stop()
        await asyncio.sleep(RESTART_SECONDS)  # a process takes this long to start again: pacing holds across
        self.figures.restarts += 1
        await self._start()

    async def _start(self) -> None:
        config = make_config(self.state_dir, CONFIG)
        self.service = Service(config, clock=LoopClock(), drivers=dict(self.devices), store=FlakyStore)
        await self.service.start()

    async def _stop(self) -> None:
        began = self._now()
        await self.service.stop()
        took = self._now() - began
        if took > STOP_BOUND + CLOSE_BOUND + 0.01:
            self._fail(f"stop took {took:.2f} s (bound {STOP_BOUND + CLOSE_BOUND} s)")

    # ---- the invariants --------------------------------------------------------------------------

    async def check(self, where: str) -> None:
        self.figures.checks += 1
        now = self._now()
        self._nothing_active_past_its_end(now, where)
        self._accepted_events_are_journaled(where)
        for name, device in self.devices.items():
            self._paced(device, where)
            await self._shows_the_winner(name, device, where)

    def _nothing_active_past_its_end(self, now: float, where: str) -> None:
        stale = [s for s in self.service.signals.values() if s.expires_at is not None and s.expires_at <= now]
        if stale:
            ago = now - (stale[0].expires_at or now)
            self._fail(f"{where}: still active after its end: {stale[0].title} ended {ago:.2f} s ago")
        if self._store().failing:
            return
        late = [s for s in self.service.store.active_signals()
                if s.expires_at is not None and s.expires_at <= now - 1.0 and self._now() - self.store_fails_until > 70]
        if late:
            ago = now - (late[0].expires_at or now)
            self._fail(f"{where}: the journal still has {late[0].title} active {ago:.0f} s after its end")

    def _accepted_events_are_journaled(self, where: str) -> None:
        if self._store().failing or not self.accepted:
            return
        event_id = max(self.accepted)
        stored = self.service.store.event(event_id)
        if stored is None or stored.title != self.accepted[event_id]:
            self._fail(f"{where}: accepted event {event_id} is not in the journal")

    def _paced(self, device: SimLamp, where: str) -> None:
        times = device.applied_at[-50:]
        for before, after in itertools.pairwise(times):
            if after - before < device.min_interval - 1e-6:
                self._fail(f"{where}: {device.name} got two commands {after - before:.3f} s apart")

    async def _shows_the_winner(self, name: str, device: SimLamp, where: str) -> None:
        """Within SETTLE seconds of the last change, a lamp that answers honestly shows the winner."""
        waited, last = 0.0, None
        while True:
            expected = self._expected(name, device)
            if expected is None or _look(device.shown) == _look(expected) or \
                    (expected.effect.value == "blink" and not device.shown.on):
                return
            waited = 0.0 if expected != last else waited
            if waited >= SETTLE:
                self._fail(f"{where}: {name} shows {device.shown} but should show {expected}")
            last = expected
            await asyncio.sleep(0.25)
            waited += 0.25

    def _expected(self, name: str, device: SimLamp) -> LampState | None:
        """What the lamp should show now: the winner, else its own state; None while it is broken."""
        now = self._now()
        if device.faults != Faults(ended_at=device.faults.ended_at) or now - device.faults.ended_at < FAULT_CALM:
            return None  # broken, or just mended: not yet expected to be right
        controller = self.service.lamps[name]
        if not controller.online:
            self._fail(f"{name} answers but is shown offline")
        signals = (*self.service.signals.values(), *self.service.lamp_tests.values())
        desired = reconcile(signals, name, controller.snapshot, now)
        return desired.state if desired.showing is not None else OWN_STATES[name]

    def _fail(self, message: str) -> None:
        raise Violation(f"seed {self.seed}: {message}")

    @staticmethod
    def _now() -> float:
        return asyncio.get_running_loop().time()


def _look(state: LampState) -> tuple[bool, str]:
    """What the eye sees of a frame: on or off, and its colour when on (an emulated effect's frames alike)."""
    return (state.on, state.color if state.on else "")
