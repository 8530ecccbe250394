"""The controller of one lamp: drives the real device toward the reconciled state.

It takes the restore snapshot before the first signal, applies only the latest desired
state (never a backlog) at most once per driver `min_interval`, retries an offline device
with exponential backoff, and logs `offline` once when it starts and once when it ends.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from lamplighter.drivers.base import Driver
from lamplighter.errors import DriverError
from lamplighter.model import Clock, LampState, LampView, Signal
from lamplighter.rules.reconcile import Desired, reconcile
from lamplighter.store import Store

log = logging.getLogger(__name__)

BACKOFF_FIRST = 1.0
BACKOFF_MAX = 60.0


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
        """Apply the latest desired state whenever it changes; pace and retry."""
        await self._start_driver()
        while True:
            await self._wake.wait()
            self._wake.clear()
            applied = await self._step()
            pause = self.driver.min_interval if applied else self._backoff_next()
            if pause:
                await asyncio.sleep(pause)

    async def _start_driver(self) -> None:
        try:
            await self.driver.start()
            self.actual = await self.driver.read_state()
        except DriverError as exc:
            self._mark_offline(exc)
        self._publish()

    async def _step(self) -> bool:
        """One reconcile pass; False when the device failed and must be retried."""
        since, self._pending_since = self._pending_since, None
        try:
            desired = await self._desired()
            if desired.state is not None and desired.state != self.actual:
                self._on_apply(self.name, since)
                await self.driver.apply(desired.state)
                self.actual = desired.state
            self._settle(desired)
        except DriverError as exc:
            self._mark_offline(exc)
            self._wake.set()
            self._publish()
            return False
        self._mark_online()
        self._publish()
        return True

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

    def _mark_offline(self, exc: DriverError) -> None:
        self.error = str(exc)
        if self.online:
            log.warning("lamp %s (%s) is offline: %s", self.name, self.driver.url(), exc)
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
