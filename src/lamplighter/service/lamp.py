"""The controller of one lamp: the thin async shell around the lamp planner (rules/planner.py).

The planner decides everything with time in it (restore snapshot, pacing, calm interval,
effect frames, read-back, health checks, backoff). This shell only:
- runs the planner's command against the driver, within DEVICE_DEADLINE however the device
  trickles, and turns any failure into a report (a driver bug never ends the task);
- waits until the planner's wake-up, the next signal deadline, a change, or a stop;
- keeps the restore snapshot in the journal and tells listeners when the lamp's view changes.

Stopping never depends on a cancellation being delivered: some device libraries swallow
`CancelledError` (`asyncio.wait_for` on Python 3.11). `stop()` sets a flag that the loop
checks after every await, and the service bounds how long it waits for the task.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from lamplighter.drivers.base import Driver
from lamplighter.errors import DriverError, StoreError
from lamplighter.model import Clock, LampState, LampView, Signal
from lamplighter.rules import planner
from lamplighter.rules.planner import Apply, Done, Failed, Memory, Read, Report, Traits, Why
from lamplighter.rules.reconcile import next_deadline, reconcile
from lamplighter.store import Store

log = logging.getLogger(__name__)

DEVICE_DEADLINE = 10.0  # one command to a device, however slowly it answers
LONGEST_WAIT = 60.0  # look again at least this often, so a jump of the wall clock is noticed
SNAPSHOT_RETRY = 5.0  # a restore snapshot the journal could not take is written again this often


def traits_of(driver: Driver, siren: bool) -> Traits:
    """What the planner needs to know about a driver's device."""
    return Traits(min_interval=driver.min_interval, calm_interval=driver.calm_interval,
                  verify_after=driver.verify_after, health_interval=driver.health_interval,
                  native_effects=driver.effects, tells_signal=driver.tells_signal, siren=siren,
                  pushes_state=driver.pushes_state)


class LampController:
    """One lamp's loop. `update` is cheap and synchronous; `run` does the I/O; `stop` ends it."""

    def __init__(
        self,
        name: str,
        driver: Driver,
        store: Store,
        clock: Clock,
        on_change: Callable[[LampView], None],
        on_apply: Callable[[str, float | None], None],
        kind: str = "lamp",
    ) -> None:
        self.name = name
        self.kind = kind
        self.driver = driver
        self.traits = traits_of(driver, siren=kind == "siren")
        self.memory = Memory()
        self._store = store
        self._clock = clock
        self._on_change = on_change
        self._on_apply = on_apply
        self._signals: tuple[Signal, ...] = ()
        self._pending_since: float | None = None  # when the event behind the next change was received
        self._wake = asyncio.Event()
        self._stopping = False
        self._started = False
        self._snapshot_unsaved = False  # the journal refused the snapshot: try again until it takes it
        self._published: LampView | None = None
        driver.watch(self._heard)

    # ---- what the rest of the service reads ---------------------------------------------------

    @property
    def snapshot(self) -> LampState | None:
        return self.memory.snapshot

    def resume(self, snapshot: LampState) -> None:
        """Before `run`: the snapshot the journal kept from before a restart."""
        self.memory = Memory(snapshot=snapshot)

    @property
    def online(self) -> bool:
        return self.memory.online

    @property
    def showing(self) -> Signal | None:
        return self.memory.showing

    @property
    def actual(self) -> LampState | None:
        return self.memory.actual

    @property
    def error(self) -> str:
        """Why the lamp is offline; empty while it answers."""
        return self.memory.error

    @property
    def reachable(self) -> bool:
        """Online and showing what it is sent, as far as the device can tell."""
        return self.memory.online and not self.memory.unreached

    @property
    def problem(self) -> str:
        """Why the lamp is offline or does not show what it was sent; empty when all is well."""
        return self.memory.error or self.memory.unreached

    def view(self) -> LampView:
        memory = self.memory
        return LampView(self.name, self.driver.scheme, self.driver.url(privacy=True), memory.online,
                        memory.actual, memory.showing, self.problem, self.kind, reached=not memory.unreached)

    def update(self, signals: tuple[Signal, ...], since: float | None = None) -> None:
        """New active signals (or a deadline passed) since `since`: reconcile soon."""
        self._signals = tuple(s for s in signals if self.name in s.outputs)
        if self._pending_since is None:
            self._pending_since = since
        self._wake.set()

    def stop(self) -> None:
        """Ask the loop to end at its next await, whether or not a cancellation reaches it."""
        self._stopping = True
        self._wake.set()

    # ---- the loop -----------------------------------------------------------------------------

    async def run(self) -> None:
        """Step the planner; run its command, or wait until it (or a signal deadline) wants a look."""
        report: Report | None = None
        while not self._should_end():
            now = self._clock.now()
            desired = reconcile(self._signals, self.name, self.memory.snapshot, now)
            step = planner.step(self.memory, desired, report, now, self.traits)
            self._remember(step.memory)
            if step.command is not None:
                report = await self._run_command(step.command)
                continue
            report = None
            retry = now + SNAPSHOT_RETRY if self._snapshot_unsaved else None
            wake_at = min((t for t in (step.wake_at, next_deadline(self._signals, now), retry) if t is not None),
                          default=now + LONGEST_WAIT)
            await self._wait(min(wake_at - now, LONGEST_WAIT))

    def _should_end(self) -> bool:
        task = asyncio.current_task()
        return self._stopping or (task is not None and task.cancelling() > 0)

    async def _wait(self, seconds: float) -> None:
        """Until a change or `seconds` passed. Not asyncio.wait_for: on 3.11 it can swallow a cancel."""
        try:
            async with asyncio.timeout(max(seconds, 0.0)):
                await self._wake.wait()
        except TimeoutError:
            return
        self._wake.clear()

    async def _run_command(self, command: planner.Command) -> Report:
        """One command to the device, bounded in time; any failure becomes a report."""
        try:
            async with asyncio.timeout(DEVICE_DEADLINE):
                return await self._device(command)
        except TimeoutError:
            return Failed(command, f"no complete answer within {DEVICE_DEADLINE:g} s")
        except DriverError as exc:
            return Failed(command, str(exc) or type(exc).__name__)
        except Exception as exc:  # a driver bug must not end the lamp's task
            log.exception("lamp %s: unexpected error from its driver", self.name)
            return Failed(command, str(exc) or type(exc).__name__)

    async def _device(self, command: planner.Command) -> Report:
        if isinstance(command, Apply):
            since, self._pending_since = self._pending_since, None
            self._on_apply(self.name, since)
            await self.driver.apply(command.frame, command.showing)
            return Done(command)
        if command == Read(Why.CONNECT) and not self._started:
            self._started = True
            await self.driver.start()
        return Done(command, await self.driver.read_state())

    def _heard(self, state: LampState | None) -> None:
        """The device told its state by itself (None: it can no longer tell)."""
        self._remember(planner.heard(self.memory, state, self._clock.now(), self.traits))
        if state is None:
            self._wake.set()  # the planner looks at the device at once

    def _remember(self, memory: Memory) -> None:
        """Take the planner's new memory: keep the snapshot in the journal, log and publish changes."""
        before, self.memory = self.memory, memory
        if memory.snapshot != before.snapshot or self._snapshot_unsaved:
            self._store_snapshot(memory.snapshot)
        if memory.online != before.online:
            if memory.online:
                log.warning("lamp %s (%s) is back online", self.name, self.driver.url())
            else:
                log.warning("lamp %s (%s) is offline: %s", self.name, self.driver.url(), memory.error)
        if memory.unreached and not before.unreached:
            log.warning("lamp %s (%s) %s", self.name, self.driver.url(), memory.unreached)
        elif before.unreached and not memory.unreached:
            log.warning("lamp %s (%s) shows what it was sent again", self.name, self.driver.url())
        view = self.view()
        if view != self._published:
            self._published = view
            self._on_change(view)

    def _store_snapshot(self, snapshot: LampState | None) -> None:
        """The journal keeps the snapshot across restarts. A failed write is logged once and tried again
        every SNAPSHOT_RETRY seconds; the lamp goes on meanwhile (a restart before it is written loses it)."""
        try:
            if snapshot is None:
                self._store.delete_snapshot(self.name)
            else:
                self._store.save_snapshot(self.name, snapshot)
        except StoreError as exc:
            if not self._snapshot_unsaved:
                log.warning("lamp %s: %s; its restore snapshot will be written when it works again", self.name, exc)
            self._snapshot_unsaved = True
            return
        self._snapshot_unsaved = False
