"""Intake for the async faces (the HTTP API and webhooks): group commit, and big batches in slices.

An event is answered only once it is committed and the commit is on the disk. Requests
that arrive together share one commit: every request hands its events to `accept`, which
queues them; one flush, scheduled on the event loop as soon as the first is queued, submits
everything queued by then in one journal transaction. If a group cannot be stored, each
request is tried again on its own, so one request's bad event never costs the others theirs.

The commit wakes the lamp controllers, and only then does the request wait for the disk
sync (service/durability.py, one fsync in a worker thread for every commit before it), so
a lamp's command goes out while the disk syncs, before the HTTP answer.

A request with more than SLICE events (an Alertmanager burst of thousands of alerts) is
submitted in slices of SLICE events, one transaction each, with a turn of the event loop
between them, so it never holds the loop for more than one slice (about 5 ms for 50
events in a daemon, with its per-event log line) and other requests are served meanwhile.
If a slice cannot be stored, the request is answered with the error; the slices before it
stay stored, and the sender's retry finds them deduplicated (same key), so nothing shows
twice and nothing is lost.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from lamplighter.model import Event, Receipt

SLICE = 50  # events per transaction for a big request: ~5 ms of the loop each in a daemon, by bench/batch.py

SubmitMany = Callable[[Sequence[Event]], list[Receipt]]
Durable = Callable[[], Awaitable[None]]


@dataclass
class _Waiting:
    events: Sequence[Event]
    answer: asyncio.Future[list[Receipt]] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class Intake:
    """Queues events from async faces and commits them in groups; `submit_many` stores a group in one transaction."""

    def __init__(self, submit_many: SubmitMany, durable: Durable) -> None:
        self._submit_many = submit_many
        self._durable = durable
        self._queue: list[_Waiting] = []
        self.groups = 0  # flushes so far (for tests and metrics: how much group commit saved)

    async def accept(self, events: Sequence[Event]) -> list[Receipt]:
        """Store and route `events`; returns once they are on the disk. StoreError if they cannot be stored."""
        if len(events) > SLICE:
            receipts = await self._in_slices(events)
        else:
            waiting = _Waiting(events)
            if not self._queue:
                asyncio.get_running_loop().call_soon(self._flush)
            self._queue.append(waiting)
            receipts = await waiting.answer
        await self._durable()
        return receipts

    def _flush(self) -> None:
        group, self._queue = self._queue, []
        self.groups += 1
        if len(group) == 1:
            self._submit_one(group[0])
            return
        try:
            receipts = self._submit_many([event for waiting in group for event in waiting.events])
        except Exception:
            for waiting in group:  # one at a time: one bad request does not cost the others theirs
                self._submit_one(waiting)
            return
        start = 0
        for waiting in group:
            end = start + len(waiting.events)
            _answer(waiting, receipts[start:end])
            start = end

    def _submit_one(self, waiting: _Waiting) -> None:
        try:
            receipts = self._submit_many(waiting.events)
        except Exception as exc:  # a StoreError, or a bug: the request is answered with it, never left waiting
            _fail(waiting, exc)
            return
        _answer(waiting, receipts)

    async def _in_slices(self, events: Sequence[Event]) -> list[Receipt]:
        receipts: list[Receipt] = []
        for start in range(0, len(events), SLICE):
            if start:
                await asyncio.sleep(0)  # a turn of the loop: other requests, the lamps, /healthz
            receipts += self._submit_many(events[start:start + SLICE])
        return receipts


def _answer(waiting: _Waiting, receipts: list[Receipt]) -> None:
    if not waiting.answer.done():  # a request that was cancelled meanwhile wants no answer
        waiting.answer.set_result(receipts)


def _fail(waiting: _Waiting, error: Exception) -> None:
    if not waiting.answer.done():
        waiting.answer.set_exception(error)
