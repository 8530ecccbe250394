"""The journal: a journal from an older version opens and keeps its events."""

import sqlite3
from pathlib import Path

from lamplighter.store import Store

VERSION_0_SIGNALS = """
CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, received_at REAL NOT NULL, level TEXT NOT NULL,
    title TEXT NOT NULL, body TEXT NOT NULL, sender TEXT NOT NULL, source TEXT NOT NULL, key TEXT NOT NULL,
    status TEXT NOT NULL, labels TEXT NOT NULL, outcome TEXT NOT NULL, reasons TEXT NOT NULL, signal_id INTEGER);
CREATE TABLE signals (event_id INTEGER PRIMARY KEY REFERENCES events(id), level TEXT NOT NULL, key TEXT NOT NULL,
    title TEXT NOT NULL, lamps TEXT NOT NULL, started_at REAL NOT NULL, expires_at REAL, ended_at REAL,
    end_reason TEXT);
INSERT INTO events VALUES (1, 100.0, '911', 'db down', '', 'alice', 'api', '', 'firing', '{}', 'shown', '[]', 1);
INSERT INTO signals VALUES (1, '911', '911:db down', 'db down', '["desk"]', 100.0, NULL, NULL, NULL);
"""


def test_a_journal_from_before_snooze_is_migrated_and_keeps_its_signals(tmp_path: Path) -> None:
    path = tmp_path / "lamplighter.db"
    with sqlite3.connect(path) as old:
        old.executescript(VERSION_0_SIGNALS)
    store = Store(path)
    [signal] = store.active_signals()
    assert (signal.event_id, signal.title, signal.snoozed_until) == (1, "db down", None)
    store.snooze_signals([1], 500.0)
    assert store.active_signals()[0].snoozed_until == 500.0
    store.close()
    reopened = Store(path)  # opening the migrated journal again changes nothing
    assert reopened.active_signals()[0].snoozed_until == 500.0
    assert reopened.recent_events(5)[0].title == "db down"
