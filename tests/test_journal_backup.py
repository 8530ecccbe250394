"""`lamplighter backup` while a real daemon takes events, and `lamplighter restore` (refused while it runs)."""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from tests.daemon import Daemon

LEVELS = "guards: {rate_limit: {per_sender: null, per_source: null}}\nlevels: {'911': {hold: until_ack}}\n"


def cli(daemon: Daemon, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lamplighter", *args], env=daemon.env(), capture_output=True,
                          text=True, timeout=60)


class Feeder(threading.Thread):
    """Posts 912s back to back; `accepted` holds the ids answered 202, in order, with when the answer came."""

    def __init__(self, daemon: Daemon) -> None:
        super().__init__(daemon=True)
        self.daemon_under_test = daemon
        self.accepted: list[tuple[float, int]] = []
        self.done = threading.Event()

    def run(self) -> None:
        with self.daemon_under_test.client() as client:
            n = 0
            while not self.done.is_set():
                n += 1
                answer = client.post("/api/events", json={"level": "912", "title": f"load {n}", "key": f"k{n}"})
                assert answer.status_code == 202, answer.text
                self.accepted.append((time.monotonic(), answer.json()["id"]))


def stored_ids(path: Path) -> set[int]:
    with contextlib.closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        return {row[0] for row in db.execute("SELECT id FROM events")}


def test_a_backup_taken_while_events_pour_in_is_intact_and_has_every_event_committed_before_it(
        daemon: Callable[..., Daemon], tmp_path: Path) -> None:
    running = daemon(LEVELS)
    with running.client() as client:
        alarm = client.post("/api/events", json={"level": "911", "title": "payments down"}).json()["id"]
    feeder = Feeder(running)
    feeder.start()
    while len(feeder.accepted) < 200:
        time.sleep(0.01)
    began = time.monotonic()
    result = cli(running, "backup", str(tmp_path / "backup.db"))
    feeder.done.set()
    feeder.join(timeout=10)
    assert result.returncode == 0, result.stderr
    before = {event_id for at, event_id in feeder.accepted if at < began}
    in_backup = stored_ids(tmp_path / "backup.db")
    assert before | {alarm} <= in_backup
    assert len(feeder.accepted) > len(before)  # the daemon kept taking events during the backup
    with contextlib.closing(sqlite3.connect(tmp_path / "backup.db")) as db:
        active = {row[0] for row in db.execute("SELECT event_id FROM signals WHERE ended_at IS NULL")}
    assert alarm in active
    assert f"backed up {len(in_backup)} events, {len(active)} active signal(s)" in result.stdout


def test_restore_is_refused_while_the_daemon_runs_and_puts_the_backup_in_place_once_it_stopped(
        daemon: Callable[..., Daemon], tmp_path: Path) -> None:
    running = daemon(LEVELS)
    with running.client() as client:
        kept = client.post("/api/events", json={"level": "911", "title": "payments down"}).json()["id"]
        assert cli(running, "backup", str(tmp_path / "backup.db")).returncode == 0
        later = client.post("/api/events", json={"level": "912", "title": "after the backup"}).json()["id"]
    journal = running.workdir / "state" / "lamplighter.db"

    refused = cli(running, "restore", str(tmp_path / "backup.db"))
    assert refused.returncode == 1
    assert "a Lamplighter daemon is running on" in refused.stderr and "stop it first" in refused.stderr
    assert not journal.with_name("lamplighter.db.before-restore").exists()

    assert running.stop() == 0
    restored = cli(running, "restore", str(tmp_path / "backup.db"))
    assert restored.returncode == 0, restored.stderr
    assert "restored 1 events, 1 active signal(s)" in restored.stdout
    assert stored_ids(journal.with_name("lamplighter.db.before-restore")) == {kept, later}

    again = Daemon(running.workdir, running.config_body, port=running.port).start()
    try:
        with again.client() as client:
            assert [e["id"] for e in client.get("/api/events").json()] == [kept]
            assert client.get("/api/lamps").json()[0]["showing"]["event_id"] == kept  # the 911 is back on
    finally:
        again.stop()


def test_a_file_that_is_not_a_journal_is_refused_and_changes_nothing(daemon: Callable[..., Daemon],
                                                                      tmp_path: Path) -> None:
    running = daemon(LEVELS)
    with running.client() as client:
        kept = client.post("/api/events", json={"level": "912", "title": "disk full"}).json()["id"]
    assert running.stop() == 0
    journal = running.workdir / "state" / "lamplighter.db"
    (tmp_path / "notes.txt").write_text("not a database\n" * 100)
    with contextlib.closing(sqlite3.connect(tmp_path / "other.db")) as other:
        other.execute("CREATE TABLE recipes (name TEXT)")
    for bad, why in [("notes.txt", "file is not a database"), ("other.db", "not a Lamplighter journal"),
                     ("missing.db", "no such file")]:
        result = cli(running, "restore", str(tmp_path / bad))
        assert result.returncode == 1 and f"cannot restore from {tmp_path / bad}" in result.stderr, result.stderr
        assert why in result.stderr
    assert stored_ids(journal) == {kept}
    assert sorted(p.name for p in journal.parent.glob("lamplighter.db*")) == ["lamplighter.db"]


def test_a_second_daemon_on_the_same_journal_is_refused(daemon: Callable[..., Daemon]) -> None:
    running = daemon(LEVELS)
    second = subprocess.run([sys.executable, "-m", "lamplighter", "run", "-c", str(running.config_path)],
                            env=running.env(), capture_output=True, text=True, timeout=60)
    assert second.returncode == 1
    assert f"a Lamplighter daemon is running on {running.workdir / 'state'}" in second.stderr
    with running.client() as client:  # the first one is untouched
        assert client.post("/api/events", json={"level": "912", "title": "still here"}).status_code == 202
