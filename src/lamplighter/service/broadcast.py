"""Fan-out of live updates to any number of slow or fast listeners (lamp pages, dashboards).

Each listener has a small queue; when it falls behind it loses the oldest item, never the
latest, because what matters on a screen is the state now. `close` sends None to everyone.
"""

from __future__ import annotations

import asyncio
from typing import Generic, TypeVar

T = TypeVar("T")
QUEUE_SIZE = 16


class Broadcast(Generic[T]):
    def __init__(self) -> None:
        self._queues: set[asyncio.Queue[T | None]] = set()

    def subscribe(self) -> asyncio.Queue[T | None]:
        queue: asyncio.Queue[T | None] = asyncio.Queue(QUEUE_SIZE)
        self._queues.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[T | None]) -> None:
        self._queues.discard(queue)

    def publish(self, item: T) -> None:
        for queue in self._queues:
            _put_latest(queue, item)

    def close(self) -> None:
        for queue in self._queues:
            _put_latest(queue, None)


def _put_latest(queue: asyncio.Queue[T | None], item: T | None) -> None:
    if queue.full():
        queue.get_nowait()
    queue.put_nowait(item)
