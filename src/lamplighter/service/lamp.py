"""The controller of one lamp: drives the real device toward the reconciled state.

It takes the restore snapshot before the first signal, applies only the latest desired
state (never a backlog) at most once per driver `min_interval`, retries an offline device
with exponential backoff, and logs `offline` once when it starts and once when it ends.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from lamplighter.drivers.base import Driver
from lamplighter.errors import DriverError
from lamplighter.model import Clock, LampState, LampView, Signal
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
        self.actual: LampState | None = None
        self.showing: Signal | None = None
        self.online = True
        self.error = ""
        self._backoff = BACKOFF_FIRST
        self._published: LampView | None = None

    def view(self) -> LampView:
        return LampView(self.name, self.driver.scheme, self.driver.url(privacy=True), self.online,
                        self.actual, self.showing, self.error, self.kind)

    def update(self, signals: tuple[Signal, ...], since: float | None = None) -> None:
        """New active signals (or a deadline passed) since `since`: reconcile soon."""
        self._signals = tuple(s for s in signals if self.name in s.lamps | s.sirens)
        if self._pending_since is None:
            self._pending_since = since
        self._wake.set()

    async def run(self) -> None:
        """Apply the latest desired state whenever it changes, at the driver's pace; while idle,
        check the device now and then; while it is offline, retry with backoff."""
        await self._device(self._connect)
        while True:
            if await self._changed(HEALTH_INTERVAL if self.online else self._backoff_next()):
                if await self._device(self._reconcile) and self.driver.min_interval:
                    await asyncio.sleep(self.driver.min_interval)
            else:
                await self._device(self._check)

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
            self.actual = None
            self._mark_offline(str(exc) or type(exc).__name__)
            self._publish()
            return False
        if talked:
            self._mark_online()
        self._publish()
        return True

    async def _connect(self) -> bool:
        await self.driver.start()
        self.actual = await self.driver.read_state()
        return True

    async def _check(self) -> bool:
        """Read the device (is it there? did it lose its state?) and put it where it should be."""
        self.actual = await self.driver.read_state()
        await self._reconcile()
        return True

    async def _reconcile(self) -> bool:
        """One reconcile pass; True when it talked to the device."""
        since, self._pending_since = self._pending_since, None
        needs_snapshot = self.snapshot is None
        desired = await self._desired()
        talked = needs_snapshot and self.snapshot is not None
        if desired.state is not None and desired.state != self.actual:
            self._on_apply(self.name, since)
            await self.driver.apply(desired.state, desired.showing)
            self.actual = desired.state
            talked = True
        self._settle(desired)
        return talked

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

    def _mark_online(self) -> None:
        if not self.online:
            log.warning("lamp %s (%s) is back online", self.name, self.driver.url())
        self.online = True
        self.error = ""
        self._backoff = BACKOFF_FIRST

    def _backoff_next(self) -> float:
        pause, self._backoff = self._backoff, min(self._backoff * 2, BACKOFF_MAX)
        return pause
