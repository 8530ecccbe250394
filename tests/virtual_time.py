"""An asyncio event loop on virtual time: hours of holds, backoffs and health checks in milliseconds.

`VirtualTimeLoop` is a normal selector loop whose clock moves only when every task is
waiting: instead of blocking until the next timer, it jumps its time to that timer. Work in
threads started through the loop (`asyncio.to_thread`) takes no virtual time: while any runs,
the loop waits for it in real time. Threads it cannot see (anyio's, which FastAPI uses for a
plain `def` route or dependency) would let time jump: the app keeps its routes `async`. Real
sockets still work (they are polled without waiting), but nothing that needs real time to
pass should run on it. Runs on it are deterministic: the same program and seed give the
same interleaving.

`LoopClock` is the service clock on such a loop (epoch seconds = loop time), so the
service's deadlines and the loop's timers are one clock, as in the daemon.

A test module opts in with `pytestmark = pytest.mark.virtual_time` (see conftest.py).
"""

from __future__ import annotations

import asyncio
import selectors
from typing import Any

START = 1_800_000_000.0  # a fixed, arbitrary moment: 2027-01-15 08:00 UTC
REAL_POLL = 0.01  # seconds of real time to wait for a thread's work, with virtual time standing still


class _JumpingSelector(selectors.DefaultSelector):  # type: ignore[misc, valid-type]
    """Polls real file descriptors without waiting; a wait for a timer moves the loop's time instead,
    unless work runs in a thread (`busy`): then it waits in real time for that work, as time stands still."""

    def __init__(self, loop_time: list[float], busy: list[int]) -> None:
        super().__init__()
        self._time = loop_time
        self._busy = busy

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready: list[tuple[selectors.SelectorKey, int]] = super().select(0)
        if ready or (timeout is not None and timeout <= 0):
            return ready
        if timeout is None or self._busy[0]:
            return super().select(REAL_POLL)  # a thread will wake us when its work is done
        self._time[0] += timeout
        return []


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """A selector event loop whose `time()` is virtual and jumps to the next timer when all are waiting."""

    def __init__(self, start: float = START, early: float = 0.0) -> None:
        self._now = [start]
        self._busy = [0]  # work running in threads (asyncio.to_thread, run_in_executor)
        super().__init__(selector=_JumpingSelector(self._now, self._busy))
        # A timer runs once it is due within this: at least above the float step at epoch magnitudes
        # (2.4e-7 s), or a due timer never runs; more makes every wake-up come up to `early` seconds early.
        self._clock_resolution = max(1e-6, early)

    def time(self) -> float:
        return self._now[0]

    def run_in_executor(self, executor: Any, func: Any, *args: Any) -> asyncio.Future[Any]:
        self._busy[0] += 1
        future = super().run_in_executor(executor, func, *args)
        future.add_done_callback(self._idle)
        return future

    def _idle(self, _future: asyncio.Future[Any]) -> None:
        self._busy[0] -= 1


class LoopClock:
    """The service clock on the running loop: epoch seconds that move with the loop's (virtual) time."""

    def now(self) -> float:
        return asyncio.get_running_loop().time()


def run_virtual(main: Any, start: float = START, early: float = 0.0) -> Any:
    """Run a coroutine function `main()` to the end on a fresh VirtualTimeLoop."""
    loop = VirtualTimeLoop(start, early)
    try:
        return loop.run_until_complete(main())
    finally:
        loop.run_until_complete(_cancel_all(asyncio.all_tasks(loop)))
        loop.close()


async def _cancel_all(tasks: set[asyncio.Task[Any]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
