"""Upgrades keep state: a journal written by the previous release opens in a real daemon of this one
with every event, the active 911 and the lamp's restore snapshot.

tests/data/journal/f801daa.db was made by the Lamplighter of commit f801daa (the release before
retention) with `scripts/make-upgrade-journal.py f801daa`; run it with another commit to make the
journal of a later release.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from tests.daemon import Daemon

FIXTURE = Path(__file__).parent / "data" / "journal" / "f801daa.db"
CONFIG = "lamps: {desk: 'virtual://desk'}\nlevels: {'911': {hold: until_ack}, '912': {hold: 1s}}\n"


def fixture_rows() -> tuple[list[tuple[Any, ...]], list[int], dict[str, Any]]:
    """The events (id, level, title, outcome), the active signals and the snapshots, read with sqlite3 alone."""
    with contextlib.closing(sqlite3.connect(f"file:{FIXTURE}?mode=ro&immutable=1", uri=True)) as db:
        events = db.execute("SELECT id, level, title, outcome FROM events ORDER BY id").fetchall()
        active = [row[0] for row in db.execute("SELECT event_id FROM signals WHERE ended_at IS NULL")]
        snapshots = {lamp: json.loads(state) for lamp, state in db.execute("SELECT lamp, state FROM snapshots")}
    return events, active, snapshots


def wait_for(client: httpx.Client, ready: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while True:
        desk: dict[str, Any] = client.get("/api/lamps").json()[0]
        if ready(desk) or time.monotonic() > deadline:
            return desk
        time.sleep(0.05)


def test_a_journal_of_the_previous_release_opens_with_its_events_active_911_and_snapshot(
        daemon: Callable[..., Daemon], tmp_path: Path) -> None:
    events, active, snapshots = fixture_rows()
    assert len(events) == 6 and len(active) == 1 and set(snapshots) == {"desk"}  # what the fixture holds
    state = tmp_path / "d" / "state"
    state.mkdir(parents=True)
    shutil.copyfile(FIXTURE, state / "lamplighter.db")

    running = daemon(CONFIG)
    with running.client() as client:
        stored = client.get("/api/events", params={"limit": 50}).json()
        assert sorted((e["id"], e["level"], e["title"], e["outcome"]) for e in stored) == events
        desk = wait_for(client, lambda d: d["state"] is not None and d["state"]["color"] == "#ff0000")
        assert desk["showing"]["event_id"] == active[0] and desk["showing"]["level"] == "911"
        assert client.post(f"/api/events/{active[0]}/ack", json={"by": "test"}).status_code == 200
        snapshot = snapshots["desk"]
        desk = wait_for(client, lambda d: d["showing"] is None)
        assert {k: desk["state"][k] for k in ("on", "color", "brightness")} == \
            {k: snapshot[k] for k in ("on", "color", "brightness")}  # the old release's snapshot, not "off"
        new = client.post("/api/events", json={"level": "912", "title": "after the upgrade"}).json()
        assert new["id"] == len(events) + 1
    assert running.stop() == 0
    assert "rewritten once (VACUUM)" in running.log_path.read_text()
    with contextlib.closing(sqlite3.connect(state / "lamplighter.db")) as db:
        assert db.execute("PRAGMA auto_vacuum").fetchone()[0] == 2
