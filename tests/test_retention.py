"""Retention: which events the pruner deletes, that an active signal and its snapshot survive, and that
the file stays under a bound while events keep coming (virtual time: days in seconds)."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from pathlib import Path

import pytest

from lamplighter.config import GuardsConfig, RetentionConfig
from lamplighter.model import LampState, Outcome, make_event
from lamplighter.service import Service
from lamplighter.service.retention import BATCH, FIRST_PRUNE_AFTER, PRUNE_EVERY, Retention
from lamplighter.store import INCREMENTAL_VACUUM, MIGRATIONS, SCHEMA, Store
from tests.conftest import make_config
from tests.virtual_time import START, LoopClock

DAY = 86400.0
HOUR = 3600.0
SHORT_WINDOWS = "guards: {dedup_window: 1m, keyed_dedup_window: 1h, rate_limit: {per_sender: null, per_source: null}}\n"


def store_with(path: Path, ages: list[tuple[str, float]], now: float) -> tuple[Store, dict[str, int]]:
    """A journal with one event per (name, age in seconds): 911s start a signal that stays active,
    `ended` ones a signal that ended; returns the ids by name."""
    store = Store(path)
    ids = {}
    for name, age in ages:
        event = make_event("911", name, received_at=now - age)
        ids[name] = store.record_event(event, Outcome.SHOWN if name != "plain" else Outcome.UNROUTED, [])
    for name, event_id in ids.items():
        if name.startswith(("active", "ended")):
            store._db.execute("INSERT INTO signals (event_id, level, key, title, lamps, started_at) VALUES"
                              " (?, '911', ?, ?, '[\"desk\"]', ?)", (event_id, name, name, now))
        if name.startswith("ended"):
            store.end_signals([event_id], now, "resolved")
    return store, ids


@pytest.mark.parametrize(("ages", "max_age", "excess", "pruned"), [
    # old events go, young ones stay
    ([("old", 2 * DAY), ("young", 10.0)], DAY, 0, {"old"}),
    # an active signal's event stays however old, and does not stop the batch
    ([("active", 5 * DAY), ("old", 2 * DAY), ("young", 10.0)], DAY, 0, {"old"}),
    # an ended signal's event goes with its signal row
    ([("ended", 2 * DAY), ("young", 10.0)], DAY, 0, {"ended"}),
    # over the cap: the oldest go even when young enough, never the active signal's
    ([("active", 30.0), ("a", 20.0), ("b", 10.0), ("c", 5.0)], DAY, 2, {"a", "b"}),
    # nothing old: nothing goes
    ([("a", 20.0), ("b", 10.0)], DAY, 0, set()),
    # oldest first, stopping at the first to stay: a late clock step does not make the batch skip ahead
    ([("old", 2 * DAY), ("stepped", 10.0), ("after step", 3 * DAY)], DAY, 0, {"old"}),
])
def test_a_prune_batch_deletes_exactly_the_old_events_that_no_active_signal_needs(
        tmp_path: Path, ages: list[tuple[str, float]], max_age: float, excess: int, pruned: set[str]) -> None:
    now = START
    store, ids = store_with(tmp_path / "j.db", ages, now)
    deleted = store.prune_batch(now - max_age, excess, BATCH)
    left = {name for name, event_id in ids.items() if store.event(event_id) is not None}
    assert (deleted, left) == (len(pruned), set(ids) - pruned)
    signals = {row[0] for row in store._db.execute("SELECT event_id FROM signals")}
    assert signals == {ids[n] for n in left if n.startswith(("active", "ended"))}
    store.close()


def test_a_batch_never_deletes_more_than_its_limit(tmp_path: Path) -> None:
    store, _ = store_with(tmp_path / "j.db", [(f"e{i}", 2 * DAY) for i in range(25)], START)
    assert [store.prune_batch(START - DAY, 0, 10) for _ in range(4)] == [10, 10, 5, 0]
    assert store.count_events() == 0
    store.close()


def test_an_older_journal_is_rewritten_once_for_incremental_vacuum(tmp_path: Path,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "j.db"
    with sqlite3.connect(path) as old:  # as every journal before this version: auto_vacuum off
        old.executescript(SCHEMA)
        old.execute(f"PRAGMA user_version={len(MIGRATIONS)}")
        old.execute("INSERT INTO events VALUES (1, 100.0, '911', 'db down', '', '', 'api', '', 'firing', '{}',"
                    " 'shown', '[]', 1)")
    with caplog.at_level(logging.INFO, "lamplighter.store"):
        Store(path).close()
        Store(path).close()
    assert sum("rewritten once (VACUUM)" in r.getMessage() for r in caplog.records) == 1
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA auto_vacuum").fetchone()[0] == INCREMENTAL_VACUUM
        assert db.execute("SELECT title FROM events").fetchall() == [("db down",)]


# ---- the service: pruning as a deadline of its timer, on virtual time -----------------------------

RED = "lamps: {desk: 'virtual://desk?on=true&color=white'}\nlevels: {'911': {hold: until_ack}, '912': {hold: 1m}}\n"


@pytest.mark.virtual_time
async def test_the_active_911_and_its_snapshot_survive_hours_of_pruning_and_a_restart(tmp_path: Path) -> None:
    config = make_config(tmp_path, f"{RED}{SHORT_WINDOWS}retention: 2h\n")
    service = Service(config, clock=LoopClock())
    async with service.running():
        now = service.clock.now()
        alarm = service.submit(make_event("911", "payments down", received_at=now))
        passing = service.submit(make_event("912", "disk 80%", received_at=now))
        await asyncio.sleep(FIRST_PRUNE_AFTER + 1)
        assert service.retention.last_pruned == 0  # nothing is 2 h old yet
        await asyncio.sleep(6 * HOUR)
        late = service.submit(make_event("912", "disk 85%", received_at=service.clock.now()))
        assert service.store.event(passing.id) is None  # pruned
        assert service.store.event(alarm.id) is not None  # behind the active 911
        assert service.store.event(late.id) is not None
        await asyncio.sleep(2 * 60)
        assert list(service.signals) == [alarm.id]
        assert service.lamps["desk"].snapshot == LampState(on=True, color="#ffffff")
    again = Service(config, clock=LoopClock())
    async with again.running():
        await asyncio.sleep(1)
        assert list(again.signals) == [alarm.id]
        assert again.lamps["desk"].actual is not None and again.lamps["desk"].actual.color == "#ff0000"
        assert again.acknowledge(late.id, "test").name == "NOT_ACTIVE"
        assert again.acknowledge(alarm.id, "test").name == "DONE"
        await asyncio.sleep(1)
        assert again.lamps["desk"].actual == LampState(on=True, color="#ffffff")  # restored from the snapshot


@pytest.mark.virtual_time
async def test_events_the_dedup_window_needs_are_kept_even_past_max_age(tmp_path: Path) -> None:
    """`retention: 1h` with the default keyed window of a day: a keyed alert is still deduplicated after a restart."""
    config = make_config(tmp_path, "retention: 1h\nlevels: {'912': {hold: 1m}}\n")
    service = Service(config, clock=LoopClock())
    async with service.running():
        first = service.submit(make_event("912", "disk", key="disk-1", received_at=service.clock.now()))
        await asyncio.sleep(5 * HOUR)
        assert service.store.event(first.id) is not None
    again = Service(config, clock=LoopClock())
    async with again.running():
        repeat = again.submit(make_event("912", "disk", key="disk-1", received_at=again.clock.now()))
        assert repeat.outcome is Outcome.DEDUPLICATED


@pytest.mark.virtual_time
async def test_a_storm_over_the_cap_is_pruned_without_waiting_for_the_hour(tmp_path: Path) -> None:
    config = make_config(tmp_path, f"{SHORT_WINDOWS}retention: {{max_events: 1000}}\nlevels: {{'912': {{hold: 1m}}}}\n")
    service = Service(config, clock=LoopClock())
    async with service.running():
        await asyncio.sleep(FIRST_PRUNE_AFTER + 1)  # the first prune: nothing to do
        for batch in range(15):
            now = service.clock.now()
            service.submit_many([make_event("912", f"storm {batch}.{i}", key=f"k{i}", received_at=now)
                                 for i in range(100)])
            await asyncio.sleep(0.01)
        await asyncio.sleep(1)  # far less than PRUNE_EVERY
        assert asyncio.get_running_loop().time() - START < PRUNE_EVERY
        assert service.store.count_events() <= 1000
        assert service.store.recent_events(1)[0].title == "storm 14.99"


async def test_the_file_stays_under_a_bound_while_events_keep_coming_for_days(tmp_path: Path) -> None:
    """50,000 events over 3 days with `retention: 1d`, pruned every hour as the service's deadline does:
    at most a day and an hour of events stay, and the file (with its WAL) stays under what they need
    plus slack. bench/retention.py does the same with a million events."""
    events, days = 50_000, 3
    hours = days * 24
    per_hour = events // hours
    store = Store(tmp_path / "lamplighter.db")
    retention = Retention(store, RetentionConfig(max_age=DAY), GuardsConfig(), START)
    largest_file, largest_count = 0, 0
    for hour in range(hours):
        now = START + hour * HOUR
        with store.transaction():
            for n in range(per_hour):
                store.record_event(make_event("912", f"disk {hour}.{n}", body="x" * 200, key=f"k{n % 100}",
                                              received_at=now), Outcome.DEDUPLICATED, ["deduplicated"])
        largest_file = max(largest_file, journal_bytes(store.path))
        largest_count = max(largest_count, store.count_events())
        await retention.prune(now + HOUR - 1)
    kept_at_most = per_hour * 25
    assert largest_count <= kept_at_most
    assert store.count_events() == per_hour * 24  # the last day's
    bound = kept_at_most * 1024 + 8 * 1024 * 1024  # a generous 1 KiB per event, and a WAL of up to 8 MiB
    assert largest_file < bound, f"{largest_file} bytes, bound {bound}"
    store.close()


def journal_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in (path, path.with_name(path.name + "-wal")) if p.exists())
