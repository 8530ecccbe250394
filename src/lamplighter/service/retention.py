"""Retention: the journal keeps events for `retention.max_age`, and about `retention.max_events` at most.

A prune is one more deadline of the service's timer: due a minute after the start, then every
PRUNE_EVERY, and at once when a storm has stored a tenth of `max_events` since the last one.
It runs in worker threads, one batch of at most BATCH events per transaction, awaiting each, so
the event loop stays free and writes events in between; then the freed pages go back to the
disk. It never deletes an active signal's event, nor one the deduplication windows still need
(events younger than the longest window are kept whatever `max_age` says).
"""

from __future__ import annotations

import asyncio
import logging

from lamplighter.config import GuardsConfig, RetentionConfig
from lamplighter.errors import StoreError
from lamplighter.model import format_duration
from lamplighter.store import Store

log = logging.getLogger(__name__)

FIRST_PRUNE_AFTER = 60.0  # seconds after the start
PRUNE_EVERY = 3600.0
BATCH = 500  # events deleted per transaction
VACUUM_PAGES = 1000  # free pages given back to the disk per transaction
STORM_SHARE = 10  # a prune is due early once max_events / STORM_SHARE events were stored since the last


class Retention:
    """When the next prune is due, and the prune itself."""

    def __init__(self, store: Store, config: RetentionConfig, guards: GuardsConfig, now: float) -> None:
        self.store = store
        self.max_events = config.max_events
        self.keep_for = max(config.max_age, guards.dedup_window, guards.keyed_dedup_window)
        self.due_at = now + FIRST_PRUNE_AFTER
        self.task: asyncio.Task[None] | None = None
        self.last_pruned = 0  # events the last prune deleted
        self._stored = 0  # events stored since the last prune began

    def stored(self, count: int, now: float) -> bool:
        """Count events written; True when that made a prune due now (a storm is filling the journal)."""
        self._stored += count
        if self._stored >= self.max_events // STORM_SHARE and self.due_at > now:
            self.due_at = now
            return True
        return False

    def next_deadline(self) -> float | None:
        """When the next prune is due; None while one runs (its end wakes the timer)."""
        return None if self.tasks() else self.due_at

    def tasks(self) -> list[asyncio.Task[None]]:
        """The prune that runs, if any (for the service to end when it stops)."""
        return [self.task] if self.task is not None and not self.task.done() else []

    def start_if_due(self, now: float) -> asyncio.Task[None] | None:
        """Start a prune in the background if one is due and none runs; returns its task."""
        if self.tasks() or now < self.due_at:
            return None
        self.due_at = now + PRUNE_EVERY
        self._stored = 0
        self.task = asyncio.create_task(self.prune(now), name="retention")
        return self.task

    async def prune(self, now: float) -> None:
        """Delete what retention no longer keeps as of `now`, batch by batch (`last_pruned` says how many)."""
        removed = 0
        try:
            excess = await asyncio.to_thread(self.store.count_events_apart) - self.max_events
            while True:
                count = await asyncio.to_thread(self.store.prune_batch, now - self.keep_for, excess - removed, BATCH)
                removed += count
                if count < BATCH:
                    break
            free = float("inf")
            while removed and 0 < (left := await asyncio.to_thread(self.store.vacuum_step, VACUUM_PAGES)) < free:
                free = left
        except StoreError as exc:
            log.warning("%s; retention tries again in %s", exc, format_duration(PRUNE_EVERY))
        if removed:
            log.info("retention: pruned %d event(s) older than %s or beyond the newest %d", removed,
                     format_duration(self.keep_for), self.max_events)
        self.last_pruned = removed
