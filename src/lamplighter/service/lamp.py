"""The controller of one lamp: drives the real device toward the reconciled state.

It takes the restore snapshot before the first signal, applies only the latest desired
state (never a backlog) at most once per driver `min_interval`, retries an offline device
with exponential backoff, and logs `offline` once when it starts and once when it ends.

Two more rules keep a room calm and the vocabulary the same on every device:
- a light changes its look at most once per driver `calm_interval` (1 s for lights in a
  room), except when a higher-priority signal takes it: a burst of alerts ends on the
  latest look instead of flickering through all of them, and a 911 is never held back;
- an effect the device lacks (blink, pulse) is drawn as solid frames (rules/effects.py).
  Sirens are never toggled that way: a sounding siren stays on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from lamplighter.drivers.base import Driver
from lamplighter.errors import DriverError
from lamplighter.model import Clock, Effect, LampState, LampView, Signal
from lamplighter.rules.delivery import describe, reached
from lamplighter.rules.effects import Frames, emulation
from lamplighter.rules.reconcile import Desired, reconcile
from lamplighter.store import Store

log = logging.getLogger(__name__)

BACKOFF_FIRST = 1.0
BACKOFF_MAX = 60.0
HEALTH_INTERVAL = 60.0  # an idle lamp is read this often, to notice it is gone (or lost its state)


class LampController:
    """One lamp's reconcile loop. `update` is cheap and synchronous; the loop does the I/O."""

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
        self._store = store
        self._clock = clock
        self._on_change = on_change
        self._on_apply = on_apply
        self._signals: tuple[Signal, ...] = ()
        self._pending_since: float | None = None
        self._wake = asyncio.Event()
        self.snapshot: LampState | None = None
        self.actual: LampState | None = None  # the look the lamp shows (an emulated effect as one look)
        self._sent: LampState | None = None  # what the device itself was last told or read to show
        self._sent_for: int | None = None  # the event id of the signal behind it
        self._frames: Frames | None = None
        self._look_since = 0.0  # loop time the current look was first applied
        self._timer: float | None = None  # loop time of the next frame, held-back change or read-back
        self._verify_at: float | None = None  # loop time to read a new look back, where the device can say
        self._corrected = False  # the look was sent again once after a read-back showed something else
        self.showing: Signal | None = None
        self.online = True
        self.error = ""
        self.unreached = ""  # why the device does not show what it was sent, when it can say so
        self._backoff = BACKOFF_FIRST
        self._published: LampView | None = None

    def view(self) -> LampView:
        return LampView(self.name, self.driver.scheme, self.driver.url(privacy=True), self.online,
                        self.actual, self.showing, self.problem, self.kind, reached=not self.unreached)

    @property
    def reachable(self) -> bool:
        """Online and showing what it is sent, as far as the device can tell."""
        return self.online and not self.unreached

    @property
    def problem(self) -> str:
        """Why the lamp is offline or does not show what it was sent; empty when all is well."""
        return self.error or self.unreached

    def update(self, signals: tuple[Signal, ...], since: float | None = None) -> None:
        """New active signals (or a deadline passed) since `since`: reconcile soon."""
        self._signals = tuple(s for s in signals if self.name in s.outputs)
        if self._pending_since is None:
            self._pending_since = since
        self._wake.set()

    async def run(self) -> None:
        """Apply the latest desired state whenever it changes, at the driver's pace; while idle,
        check the device now and then; while it is offline, retry with backoff."""
        await self._device(self._connect)
        while True:
            if await self._changed(self._wait()) or (self.online and self._timer is not None):
                if await self._device(self._reconcile) and self.driver.min_interval:
                    await asyncio.sleep(self.driver.min_interval)
            else:
                await self._device(self._check)

    def _wait(self) -> float:
        """Seconds until the loop must act by itself: a retry, the next frame or held-back change, a check."""
        if not self.online:
            return self._backoff_next()
        if self._timer is not None:
            return max(self._timer - asyncio.get_running_loop().time(), 0.0)
        return HEALTH_INTERVAL

    async def _changed(self, timeout: float) -> bool:
        """Wait for a change; False when `timeout` passed first (time to look at the device)."""
        try:  # not asyncio.wait_for: on 3.11 it swallows a cancel that meets the wake-up, and stop() hangs
            async with asyncio.timeout(timeout):
                await self._wake.wait()
        except TimeoutError:
            return False
        self._wake.clear()
        return True

    async def _device(self, action: Callable[[], Awaitable[bool]]) -> bool:
        """Run one piece of device I/O. Any failure marks the lamp offline with its state unknown;
        it counts as online again only once a call to the device has succeeded."""
        try:
            talked = await action()
        except Exception as exc:  # a driver bug must not end the lamp's task
            if not isinstance(exc, DriverError):
                log.exception("lamp %s: unexpected error from its driver", self.name)
            self.actual = self._sent = None
            self._mark_offline(str(exc) or type(exc).__name__)
            self._publish()
            return False
        if talked:
            self._mark_online()
        self._publish()
        return True

    async def _connect(self) -> bool:
        await self.driver.start()
        self.actual = self._sent = await self.driver.read_state()
        return True

    async def _check(self) -> bool:
        """Read the device (is it there? did it lose its state?) and put it where it should be."""
        self.actual = self._sent = await self.driver.read_state()
        await self._reconcile()
        return True

    async def _reconcile(self) -> bool:
        """One reconcile pass; True when it talked to the device."""
        since, self._pending_since = self._pending_since, None
        needs_snapshot = self.snapshot is None
        desired = await self._desired()
        talked = needs_snapshot and self.snapshot is not None
        now = asyncio.get_running_loop().time()
        verify = await self._read_back(now)
        held_until = self._held_until(desired, now)
        if held_until is None and desired.state is not None and desired.state != self.actual:
            self._start_look(desired.state, now)
            verify = True
        frame, next_frame = self._frame(self.actual if held_until else desired.state, now)
        showing = self.showing if held_until else desired.showing
        if frame is not None and (frame != self._sent or self._retold(showing)):
            self._on_apply(self.name, since)
            await self.driver.apply(frame, showing)
            self._sent, self._sent_for = frame, showing.event_id if showing else None
            talked = True
            if verify and self.driver.verify_after is not None:
                self._verify_at = asyncio.get_running_loop().time() + self.driver.verify_after
        self._timer = min((t for t in (held_until, next_frame, self._verify_at) if t is not None), default=None)
        if held_until is not None:
            self._pending_since = since
        else:
            self.actual = desired.state or self.actual
            self._settle(desired)
        return talked

    async def _read_back(self, now: float) -> bool:
        """When a new look is due to be checked, read the device: report a look it did not reach, and
        return True to send it once more (the device then gets read again)."""
        if self._verify_at is None or now < self._verify_at or self._sent is None:
            return False
        self._verify_at = None
        sent, shown = self._sent, await self.driver.read_state()
        if reached(sent, shown) if self.kind == "lamp" else sent.on == shown.on:  # a siren: sounding or not
            self._mark_reached()
            self._corrected = False
            return False
        self._mark_unreached(f"was sent {describe(sent)} but shows {describe(shown)}")
        retry, self._corrected = not self._corrected, True
        if retry:
            self._sent = shown
        return retry

    def _retold(self, showing: Signal | None) -> bool:
        """A device that tells the title is told again when another signal takes it, even with the same look."""
        return self.driver.tells_signal and (showing.event_id if showing else None) != self._sent_for

    def _held_until(self, desired: Desired, now: float) -> float | None:
        """When a new look must wait for the lamp's calm interval, the loop time it may show; else None."""
        changes = desired.state is not None and desired.state != self.actual
        if not changes or self.actual is None or self.driver.calm_interval <= 0 \
                or _outranks(desired.showing, self.showing):
            return None
        ready = self._look_since + self.driver.calm_interval
        return ready if now < ready else None

    def _start_look(self, look: LampState, now: float) -> None:
        self._look_since = now
        self._corrected = False
        native = self.driver.effects if self.kind == "lamp" else frozenset(Effect)
        self._frames = emulation(look, native, self.driver.min_interval)

    def _frame(self, look: LampState | None, now: float) -> tuple[LampState | None, float | None]:
        """What the device should show this moment (the look, or its emulated effect's frame), and
        the loop time of the next frame."""
        if look is None or self._frames is None:
            return look, None
        frame, next_in = self._frames.at(now - self._look_since)
        return frame, now + next_in

    def _publish(self) -> None:
        view = self.view()
        if view != self._published:
            self._published = view
            self._on_change(view)

    async def _desired(self) -> Desired:
        desired = reconcile(self._signals, self.name, self.snapshot, self._clock.now())
        if desired.showing is not None and self.snapshot is None:
            self.snapshot = await self.driver.read_state()
            self._store.save_snapshot(self.name, self.snapshot)
        return desired

    def _settle(self, desired: Desired) -> None:
        """After the restore is applied the snapshot has served; the next signal takes a new one."""
        self.showing = desired.showing
        if desired.showing is None and self.snapshot is not None:
            self.snapshot = None
            self._store.delete_snapshot(self.name)

    def _mark_offline(self, error: str) -> None:
        self.error = error
        if self.online:
            log.warning("lamp %s (%s) is offline: %s", self.name, self.driver.url(), error)
            self.online = False

    def _mark_unreached(self, why: str) -> None:
        if not self.unreached:
            log.warning("lamp %s (%s) %s", self.name, self.driver.url(), why)
        self.unreached = why

    def _mark_reached(self) -> None:
        if self.unreached:
            log.warning("lamp %s (%s) shows what it was sent again", self.name, self.driver.url())
        self.unreached = ""

    def _mark_online(self) -> None:
        if not self.online:
            log.warning("lamp %s (%s) is back online", self.name, self.driver.url())
        self.online = True
        self.error = ""
        self._backoff = BACKOFF_FIRST

    def _backoff_next(self) -> float:
        pause, self._backoff = self._backoff, min(self._backoff * 2, BACKOFF_MAX)
        return pause


def _outranks(new: Signal | None, current: Signal | None) -> bool:
    """A signal takes a lamp at once from a lower one, or from no signal at all."""
    return new is not None and (current is None or new.priority > current.priority)
