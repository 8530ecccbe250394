"""Disk syncs of the journal, off the event loop, shared by every commit that waits for one.

A commit writes the journal's log without waiting for the disk (store.py), so the lamps act
on an event at once. A request is answered only after its commit is durable against power
loss: `durable()` returns once a sync that began after every commit so far has finished.
One sync runs at a time, in a worker thread; whoever waits meanwhile is covered by the next
one, so a burst of requests costs one or two fsyncs, not one each (group commit). Every
commit also schedules a sync by itself, so what the sources submit without waiting (MQTT,
mail) is on the disk within one sync too.
"""

from __future__ import annotations

import asyncio
import logging

from lamplighter.errors import StoreError
from lamplighter.store import Store

log = logging.getLogger(__name__)


class Durability:
    """Syncs `store` after commits; `durable()` waits for the commits so far to be on the disk."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._synced = store.commits  # commits known to be on the disk
        self._running: asyncio.Future[None] | None = None
        self.syncs = 0  # fsyncs so far: fewer than commits under load
        store.on_commit = self._soon

    async def durable(self) -> None:
        """Return once every commit made before this call is durable; StoreError if the disk refuses."""
        wanted = self._store.commits
        while self._synced < wanted:
            await asyncio.shield(self._sync())

    def _soon(self) -> None:
        """After a commit: start a sync unless one runs (the next one then covers it)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # a commit outside the service's loop (start-up, a CLI command): the next sync covers it
        loop.call_soon(self._background_sync)

    def _background_sync(self) -> None:
        if self._running is None and self._synced < self._store.commits:
            future = self._sync()
            future.add_done_callback(_log_failure)

    def _sync(self) -> asyncio.Future[None]:
        """The sync that covers every commit so far: the running one if it began after them, else the next."""
        if self._running is None:
            self._running = asyncio.ensure_future(self._run())
        return self._running

    async def _run(self) -> None:
        """One fsync, covering the commits made before it began; commits made meanwhile get the next one."""
        upto = self._store.commits
        try:
            await asyncio.to_thread(self._store.sync)
        finally:
            self._running = None
        self.syncs += 1
        self._synced = max(self._synced, upto)
        if self._synced < self._store.commits:
            asyncio.get_running_loop().call_soon(self._background_sync)


def _log_failure(future: asyncio.Future[None]) -> None:
    if not future.cancelled() and isinstance(future.exception(), StoreError):
        log.error("%s; events are kept in the journal's log and synced again at the next commit", future.exception())
