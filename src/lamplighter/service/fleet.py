"""The lamp fleet: one controller per lamp and siren, lamp tests, and the views people watch.

`update(signals, since)` hands every controller the active signals (each takes the ones
that name it); the controllers do the device work in their own tasks. A lamp test is a
level shown on one lamp for a while without an event. Listeners (lamp pages, the
dashboard) get each lamp's view on every change; `stop_tasks` and `close` end the tasks and
close the drivers within bounds, whatever a device library does with the cancellation.
A reload `add`s lamps to the running fleet and `retire`s others, which `put_back` restores
to their snapshot before it closes them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from lamplighter.drivers.base import Driver
from lamplighter.errors import DriverError, EventError, LampBusy
from lamplighter.model import Clock, LampState, LampView, Level, Signal
from lamplighter.service.broadcast import Broadcast
from lamplighter.service.lamp import LampController
from lamplighter.service.metrics import Metrics
from lamplighter.service.tasks import end_tasks, finish_tasks
from lamplighter.store import Store

log = logging.getLogger(__name__)

CLOSE_BOUND = 0.5  # seconds the drivers get to close their connections
REMEMBERED_SHOWN = 10_000  # signals whose lamps are remembered for "was it ever on a lamp?"
SETTLE_STEP = 0.02  # how often a retired lamp is looked at while it goes back to its snapshot


@dataclass(frozen=True)
class Retired:
    """A lamp taken out of the fleet by a reload, with its task (None if the fleet had not started)."""

    controller: LampController
    task: asyncio.Task[None] | None


class LampFleet:
    """Every lamp and siren the service drives."""

    def __init__(self, drivers: Mapping[str, Driver], sirens: Iterable[str], store: Store, clock: Clock,
                 metrics: Metrics, on_problem: Callable[[], None]) -> None:
        self._store = store
        self._clock = clock
        self._metrics = metrics
        self._on_problem = on_problem
        self.lamps = {name: self._controller(name, driver, sirens) for name, driver in drivers.items()}
        self.changes: dict[str, Broadcast[LampView]] = {name: Broadcast() for name in self.lamps}
        self.tests: dict[str, Signal] = {}  # lamp -> a level shown on it as a test (not an event)
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._shown_on: OrderedDict[int, set[str]] = OrderedDict()  # signal -> lamps that applied its look

    def _controller(self, name: str, driver: Driver, sirens: Iterable[str]) -> LampController:
        return LampController(name, driver, self._store, self._clock, self._lamp_changed, self._lamp_applying,
                              kind="siren" if name in set(sirens) else "lamp")

    @property
    def names(self) -> frozenset[str]:
        return frozenset(self.lamps)

    def resume(self, snapshots: Mapping[str, LampState]) -> None:
        """Before start: the restore snapshots the journal kept across a restart."""
        for name, snapshot in snapshots.items():
            if name in self.lamps:
                self.lamps[name].resume(snapshot)

    def start(self) -> None:
        self._tasks = {name: _run(c) for name, c in self.lamps.items()}

    def stop_tasks(self) -> list[asyncio.Task[None]]:
        """Ask every lamp's loop to end (a flag, not only a cancel); the tasks, for the caller to bound."""
        for controller in self.lamps.values():
            controller.stop()
        tasks, self._tasks = list(self._tasks.values()), {}
        return tasks

    async def close(self) -> None:
        """Close the drivers' connections, within CLOSE_BOUND whatever a library does."""
        closing = [asyncio.create_task(_close(c), name=f"close {c.name}") for c in self.lamps.values()]
        await finish_tasks(closing, CLOSE_BOUND)

    def update(self, signals: Iterable[Signal], since: float | None) -> None:
        """New active signals: every lamp reconciles (`since`: when the event behind it was received)."""
        everything = (*signals, *self.tests.values())
        for controller in self.lamps.values():
            controller.update(everything, since)

    # ---- reloading: lamps join and leave a running fleet -----------------------------------------

    def add(self, drivers: Mapping[str, Driver], sirens: Iterable[str], snapshots: Mapping[str, LampState]) -> None:
        """Start lamps new to the running fleet, each with the snapshot the journal kept for its name (if any);
        the next `update` shows them the active signals."""
        for name, driver in drivers.items():
            controller = self._controller(name, driver, sirens)
            if name in snapshots:
                controller.resume(snapshots[name])
            self.lamps[name], self.changes[name] = controller, Broadcast()
            self._tasks[name] = _run(controller)

    def retire(self, names: Iterable[str]) -> list[Retired]:
        """Take lamps out of the fleet at once (signals, tests and watchers no longer reach them);
        `put_back` then restores and closes them."""
        retired = []
        for name in names:
            self.tests.pop(name, None)
            self.changes.pop(name).close()
            with contextlib.suppress(KeyError):
                self._metrics.lamp_online.remove(name)
            retired.append(Retired(self.lamps.pop(name), self._tasks.pop(name, None)))
        return retired

    @staticmethod
    async def put_back(retired: list[Retired], bound: float) -> list[str]:
        """Put each retired lamp back to its restore snapshot (waiting at most `bound` seconds), then stop
        its task and close its driver. The names of the lamps that did not get back in time."""
        late = await asyncio.gather(*(_put_back(r, bound) for r in retired))
        return [r.controller.name for r, was_late in zip(retired, late, strict=True) if was_late]

    # ---- lamp tests ---------------------------------------------------------------------------

    def test(self, lamp: str, level: Level | None, level_name: str, known: Iterable[str], seconds: float) -> Signal:
        """Show a level's look on one lamp for `seconds`. EventError for an unknown level, KeyError for an
        unknown lamp, LampBusy while the lamp shows a signal."""
        controller = self.lamps[lamp]
        if level is None:
            raise EventError("level", f"unknown level {level_name!r} (known: {', '.join(known)})")
        shown = controller.showing
        if shown is not None and shown.event_id > 0:
            raise LampBusy(f"{lamp} is showing event {shown.event_id} ({shown.level}: {shown.title}); "
                           "test it when that has ended")
        now = self._clock.now()
        test = Signal(event_id=-1 - list(self.lamps).index(lamp), level=level.name,  # never an event's id
                      key=f"test:{lamp}", title=f"test of {lamp}", priority=level.priority, look=level.look,
                      lamps=frozenset({lamp}), started_at=now, expires_at=now + seconds)
        self.tests[lamp] = test
        return test

    def end_tests(self, now: float) -> bool:
        """Forget the tests that have run their time; True when one ended."""
        running = {lamp: test for lamp, test in self.tests.items() if test.active_at(now)}
        ended, self.tests = len(running) != len(self.tests), running
        return ended

    def next_deadline(self, now: float) -> float | None:
        return min((t.expires_at for t in self.tests.values() if t.expires_at and t.expires_at > now), default=None)

    # ---- views --------------------------------------------------------------------------------

    def views(self) -> list[LampView]:
        return [controller.view() for controller in self.lamps.values()]

    def reachable(self, lamp: str) -> bool:
        controller = self.lamps.get(lamp)
        return controller is not None and controller.reachable

    def problem(self, lamp: str) -> str:
        controller = self.lamps.get(lamp)
        return (controller.problem if controller else "") or "cannot be reached"

    def watch(self, lamp: str) -> asyncio.Queue[LampView | None]:
        """A queue with the lamp's view now, then on every change; None when the service stops."""
        queue = self.changes[lamp].subscribe()
        queue.put_nowait(self.lamps[lamp].view())
        return queue

    def unwatch(self, lamp: str, queue: asyncio.Queue[LampView | None]) -> None:
        self.changes[lamp].unsubscribe(queue)

    def end_watches(self) -> None:
        for changes in self.changes.values():
            changes.close()

    def shown_on(self, event_id: int) -> frozenset[str]:
        """The lamps whose devices have shown this signal (since the daemon started)."""
        return frozenset(self._shown_on.get(event_id, ()))

    def _remember_shown(self, view: LampView) -> None:
        shown = view.showing
        if shown is None or shown.event_id <= 0 or not view.online or not view.reached:
            return
        self._shown_on.setdefault(shown.event_id, set()).add(view.name)
        self._shown_on.move_to_end(shown.event_id)
        if len(self._shown_on) > REMEMBERED_SHOWN:
            self._shown_on.popitem(last=False)

    def _lamp_changed(self, view: LampView) -> None:
        self._remember_shown(view)
        changes = self.changes.get(view.name)
        if changes is None:
            return  # a retired lamp on its way back to its snapshot: nobody watches it any more
        self._metrics.lamp_online.labels(view.name).set(1 if view.online else 0)
        changes.publish(view)
        if not view.online or not view.reached:
            self._on_problem()

    def _lamp_applying(self, lamp: str, since: float | None) -> None:
        self._metrics.lamp_applies.labels(lamp).inc()
        if since is not None:
            self._metrics.event_to_apply.observe(max(0.0, self._clock.now() - since))


def _run(controller: LampController) -> asyncio.Task[None]:
    return asyncio.create_task(controller.run(), name=f"lamp {controller.name}")


async def _close(controller: LampController) -> None:
    try:
        await controller.driver.close()
    except DriverError as exc:
        log.warning("lamp %s did not close cleanly: %s", controller.name, exc)


async def _put_back(retired: Retired, bound: float) -> bool:
    """Restore one retired lamp (no signal names it any more), then end it; True if it was not back in time."""
    controller = retired.controller
    controller.update(())
    late = False
    if retired.task is not None:
        try:
            async with asyncio.timeout(bound):
                while controller.snapshot is not None:
                    await asyncio.sleep(SETTLE_STEP)
        except TimeoutError:
            late = True
            log.warning("lamp %s left the configuration before it was back to its snapshot (%s); the journal "
                        "keeps the snapshot", controller.name, controller.problem or f"not within {bound:g} s")
        controller.stop()
        await end_tasks([retired.task], bound)
    await _close(controller)
    return late
