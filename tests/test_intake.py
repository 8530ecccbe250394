"""Issue 13: group commit for the async faces, and big batches in slices that never hold the event loop.

Against a real Service and its SQLite journal: requests that arrive together share one
commit and each is answered only after it; a request whose events cannot be stored fails
alone; a batch of thousands of alerts leaves turns of the loop for other work.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import pytest

from lamplighter.errors import StoreError
from lamplighter.model import Event, Outcome, make_event
from lamplighter.service import Service
from lamplighter.service.intake import SLICE
from lamplighter.store import Store
from tests.conftest import make_config

pytestmark = pytest.mark.real_time

NO_GUARDS = """\
lamps: {desk: virtual://desk}
guards:
  rate_limit:
    per_sender: {every: 1ms, burst: 100000}
    per_source: {every: 1ms, burst: 100000}
"""


class CountingStore(Store):
    """The real journal, counting the transactions that stored events, and refusing titles with 'refuse-me'."""

    opened = 0  # transactions begun so far
    with_events: ClassVar[set[int]] = set()  # the ones that stored an event

    def record_event(self, event: Event, *args: Any, **kwargs: Any) -> int:
        if "refuse-me" in event.title:
            raise StoreError(f"cannot write to the store at {self.path}: refused for the test")
        with self.transaction():
            type(self).with_events.add(type(self).opened)
            return super().record_event(event, *args, **kwargs)

    def transaction(self) -> Any:
        if not self._joins():
            type(self).opened += 1
        return super().transaction()

    @classmethod
    def commits(cls) -> int:
        return len(cls.with_events)


def events(n: int, prefix: str) -> list[Event]:
    return [make_event("912", f"{prefix} {i}", received_at=time.time(), key=f"{prefix}-{i}") for i in range(n)]


def stored_titles(path: Path) -> set[str]:
    with sqlite3.connect(path) as db:
        return {row[0] for row in db.execute("SELECT title FROM events")}


@pytest.fixture
async def service(tmp_path: Path) -> Any:
    CountingStore.opened, CountingStore.with_events = 0, set()
    service = Service(make_config(tmp_path, NO_GUARDS), store=CountingStore)
    async with service.running():
        yield service


async def test_requests_that_arrive_together_share_one_commit_and_are_answered_after_it(service: Service) -> None:
    before = CountingStore.commits()
    answers = await asyncio.gather(*(service.accept(events(1, f"together {i}")) for i in range(20)))
    assert CountingStore.commits() - before == 1  # one transaction, one fsync, for twenty requests
    assert [len(a) for a in answers] == [1] * 20 and all(a[0].outcome is Outcome.SHOWN for a in answers)
    stored = stored_titles(service.store.path)
    assert {f"together {i} 0" for i in range(20)} <= stored  # every answered event is in the journal


async def test_a_request_that_cannot_be_stored_fails_alone(service: Service) -> None:
    good = [service.accept(events(2, f"good {i}")) for i in range(3)]
    bad = service.accept(events(1, "refuse-me"))
    results = await asyncio.gather(*good, bad, return_exceptions=True)
    assert all(isinstance(r, list) and len(r) == 2 for r in results[:3])
    assert isinstance(results[3], StoreError) and "refused for the test" in str(results[3])
    stored = stored_titles(service.store.path)
    assert {f"good {i} {j}" for i in range(3) for j in range(2)} <= stored
    assert not any(title.startswith("refuse-me") for title in stored)  # and nothing of it was written


async def test_a_big_batch_goes_in_slices_and_lets_other_requests_through(service: Service) -> None:
    size = 12 * SLICE
    gaps: list[float] = []

    async def ticker() -> None:  # what /healthz would see: how long the loop is held at a time
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    ticking = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    before = CountingStore.commits()
    receipts, single = await asyncio.gather(service.accept(events(size, "storm")),
                                            service.accept(events(1, "911 meanwhile")))
    ticking.cancel()
    assert len(receipts) == size and len({r.id for r in receipts}) == size
    assert len(single) == 1 and single[0].outcome is Outcome.SHOWN
    assert CountingStore.commits() - before >= size // SLICE  # one transaction per slice ...
    assert len(gaps) >= size // SLICE  # ... with a turn of the loop after each (no timing asserted)
    assert len(stored_titles(service.store.path)) >= size + 1


async def test_a_slice_that_fails_answers_the_error_and_keeps_the_slices_before_it(service: Service) -> None:
    batch: Sequence[Event] = [*events(SLICE, "first"), *events(1, "refuse-me"), *events(5, "after")]
    with pytest.raises(StoreError):
        await service.accept(batch)
    stored = stored_titles(service.store.path)
    assert {f"first {i}" for i in range(SLICE)} <= stored  # committed, so a retry finds them deduplicated
    assert not any(t.startswith(("refuse-me", "after")) for t in stored)
    again = await service.accept(events(SLICE, "first"))
    assert {r.outcome for r in again} == {Outcome.DEDUPLICATED}


class SlowDisk(Store):
    """The real journal on a disk whose sync takes as long as the test says (the fsync waits for `release`)."""

    release: ClassVar[threading.Event]
    syncing: ClassVar[threading.Event]

    def sync(self) -> None:
        type(self).syncing.set()
        type(self).release.wait(10)
        super().sync()


async def test_the_lamp_acts_while_the_disk_syncs_and_the_answer_waits_for_the_sync(tmp_path: Path) -> None:
    """Issue 13: the device command goes out once the event is committed; the 2xx only once it is on the disk."""
    SlowDisk.release, SlowDisk.syncing = threading.Event(), threading.Event()
    service = Service(make_config(tmp_path, NO_GUARDS), store=SlowDisk)
    async with service.running():
        answer = asyncio.ensure_future(service.accept(events(1, "disk is slow")))
        await asyncio.to_thread(SlowDisk.syncing.wait, 5)
        for _ in range(100):  # the lamp shows the alert while the sync is still running
            if service.lamps["desk"].showing is not None:
                break
            await asyncio.sleep(0.01)
        assert service.lamps["desk"].showing is not None and not answer.done()
        SlowDisk.release.set()
        [receipt] = await asyncio.wait_for(answer, 5)
        assert receipt.outcome is Outcome.SHOWN


async def test_a_burst_of_requests_costs_a_few_disk_syncs_not_one_each(service: Service) -> None:
    before = service.durability.syncs
    await asyncio.gather(*(service.accept(events(1, f"burst {i}")) for i in range(50)))
    assert service.durability.syncs - before <= 3


async def test_the_journals_log_is_copied_back_off_the_event_loop_and_stays_small(service: Service) -> None:
    """SQLite's own checkpoint ran inside a commit on the event loop; ours runs in the sync thread."""
    for i in range(60):
        await service.accept(events(10, f"wal {i}"))  # 60 commits of 10 events: more than CHECKPOINT_EVERY pages
    await service.durable()
    with sqlite3.connect(service.store.path) as db:
        assert db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 1000  # a fresh connection: default
    assert service.store._db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0  # the loop's: never
    wal = Path(f"{service.store.path}-wal")
    assert wal.stat().st_size < 4 * 1024 * 1024  # bounded by CHECKPOINT_EVERY commits, not by the storm
