"""Long CPU work on the event loop in short turns, so that a big request never holds up the others.

An 11,000-alert webhook batch takes hundreds of milliseconds of Python to turn into
events. In a worker thread that time is not free either: the loop thread must win the GIL
back after every socket call, up to a switch interval (5 ms) each time, and one request's
dozen socket calls then wait up to 100 ms (the convoy effect, measured by bench/batch.py).
So such work runs on the loop itself, drawn from an iterator, and gives the loop a turn
(`asyncio.sleep(0)`) whenever it has run for TURN seconds: another request waits for at most
one turn, however big the batch.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import TypeVar

T = TypeVar("T")

TURN = 0.005  # seconds of work between two turns of the loop


async def drawn_in_turns(items: Iterable[T], turn: float = TURN) -> list[T]:
    """Every item of `items` (a generator doing the work), with a turn of the loop every `turn` seconds."""
    drawn: list[T] = []
    deadline = time.perf_counter() + turn
    for item in items:
        drawn.append(item)
        if time.perf_counter() >= deadline:
            await asyncio.sleep(0)
            deadline = time.perf_counter() + turn
    return drawn
