"""What the device-driver tests share: a lamp controller on a real store, signals, bursts, waiting.

The controller is the service's own (`LampController`): it coalesces to the latest desired
state, paces by the driver's `min_interval`, takes the restore snapshot and retries, so a
burst test drives the driver exactly as the daemon does.

    async with running_lamp(driver, tmp_path) as lamp:
        await lamp.burst([f"#{i:06x}" for i in range(300)])
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lamplighter.drivers.base import Driver
from lamplighter.errors import DeviceOffline
from lamplighter.model import Effect, LampState, LampView, Signal, SystemClock
from lamplighter.service.lamp import LampController
from lamplighter.store import Store

LAMP = "desk"
RED = LampState(on=True, color="#ff0000")
WAIT = 10.0  # generous: a slow shared machine must not fail a test that is only waiting
BURST_SECONDS = 1.5


async def eventually(check: Callable[[], Any], timeout: float = WAIT) -> None:
    """Wait (in real time) until `check()` holds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


def signal(color: str, event_id: int = 1, effect: Effect = Effect.SOLID) -> Signal:
    """An active signal that shows `color` on the test lamp until it ends."""
    return Signal(event_id=event_id, level="911", key=str(event_id), title="t", priority=300,
                  look=LampState(on=True, color=color, effect=effect), lamps=frozenset({LAMP}), started_at=0.0,
                  expires_at=None)


async def offline_reason(driver: Driver, needle: str) -> str:
    """What the driver says once it finds the device offline for the reason `needle` names."""
    async with asyncio.timeout(WAIT):
        while True:
            try:
                await driver.read_state()
            except DeviceOffline as exc:
                if needle in str(exc):
                    return str(exc)
            await asyncio.sleep(0.02)


def offline_logs(records: list[logging.LogRecord]) -> tuple[int, int]:
    """How many times the lamp was logged offline, and back online."""
    messages = [r.getMessage() for r in records]
    return sum("is offline" in m for m in messages), sum("back online" in m for m in messages)


@dataclass
class Lamp:
    controller: LampController
    views: list[LampView] = field(default_factory=list)

    def show(self, *signals: Signal) -> None:
        self.controller.update(signals)

    async def burst(self, colors: list[str]) -> None:
        """Desired colours one after another over BURST_SECONDS, then leave the last one showing."""
        pause = BURST_SECONDS / len(colors)
        for number, color in enumerate(colors, start=1):
            self.show(signal(color, number))
            await asyncio.sleep(pause)


@contextlib.asynccontextmanager
async def running_lamp(driver: Driver, state_dir: Path) -> AsyncIterator[Lamp]:
    """A LampController for `driver`, running; the driver is closed afterwards."""
    store = Store(state_dir / "lamps.db")
    views: list[LampView] = []
    controller = LampController(LAMP, driver, store, SystemClock(), views.append, lambda name, since: None)
    task = asyncio.create_task(controller.run())
    try:
        await eventually(lambda: views)  # started: the state was read (or the lamp is offline)
        yield Lamp(controller, views)
    finally:
        controller.stop()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, WAIT)
        await driver.close()
        store.close()
