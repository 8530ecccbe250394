"""The durable journal: SQLite in WAL mode, under the state directory.

It holds every accepted event with its outcome and reasons, the active signals and the
lamps' restore snapshots. Each accepted event and the signal changes it causes are one
transaction, committed before the API answers, so a crash (even SIGKILL or power loss)
never loses an event that was answered 2xx.

Commit and disk sync are two steps, and the thread that commits (the event loop's) never
waits for the disk. A commit writes the transaction to the write-ahead log (WAL) without a
sync (`synchronous=OFF` on this connection): from then on a crash of the process keeps it,
and the lamps can act on it. `sync()` then makes the log durable against power loss with one
fsync of the WAL file, in a worker thread, covering every commit before it (what
`synchronous=FULL` does at each commit, but off the event loop and shared). The same thread
copies the log into the database file (a checkpoint) every CHECKPOINT_EVERY commits, on a
connection of its own with `synchronous=FULL`: SQLite syncs the log before the copy and the
database file after it, before the log may start over. The service answers a request only
once a sync that began after its commit has finished (service/durability.py).

Why OFF and not NORMAL: with NORMAL, SQLite syncs the log's header on the committing thread
when the log starts over after a checkpoint. That held the first event after each checkpoint
for 0.5-2 ms, once 46 ms (bench/vs_homeassistant.py). The header needs no sync of its own:
the next `sync()` covers it with the frames after it, and until then the commit is not
promised. `close()` turns FULL back on, so the checkpoint SQLite makes when the last
connection closes is synced before the log is deleted.

Old events are pruned in small batches (`prune_batch`, on a connection of its own so that a
worker thread can run it), never an active signal's; the file gives the freed pages back to
the disk (`auto_vacuum=INCREMENTAL`, `vacuum_step`). `backup` copies a consistent journal
with SQLite's online backup API while the daemon writes to it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lamplighter.errors import StoreError
from lamplighter.model import MAX_EVENT_ID, Event, LampState, Outcome, Signal, Status, StoredEvent

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at REAL NOT NULL,
    level TEXT NOT NULL,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    sender TEXT NOT NULL,
    source TEXT NOT NULL,
    key TEXT NOT NULL,
    status TEXT NOT NULL,
    labels TEXT NOT NULL,
    outcome TEXT NOT NULL,
    reasons TEXT NOT NULL,
    signal_id INTEGER
);
CREATE TABLE IF NOT EXISTS signals (
    event_id INTEGER PRIMARY KEY REFERENCES events(id),
    level TEXT NOT NULL,
    key TEXT NOT NULL,
    title TEXT NOT NULL,
    lamps TEXT NOT NULL,
    started_at REAL NOT NULL,
    expires_at REAL,
    ended_at REAL,
    end_reason TEXT,
    snoozed_until REAL
);
CREATE INDEX IF NOT EXISTS signals_active ON signals(ended_at) WHERE ended_at IS NULL;
CREATE TABLE IF NOT EXISTS snapshots (
    lamp TEXT PRIMARY KEY,
    state TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS settings (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""
MIGRATIONS = (
    # version 1: signals can be snoozed
    "ALTER TABLE signals ADD COLUMN snoozed_until REAL",
)


INCREMENTAL_VACUUM = 2  # PRAGMA auto_vacuum: the file can give free pages back to the disk
ACTIVE_SIGNAL_EVENTS = "SELECT event_id FROM signals WHERE ended_at IS NULL"

BUSY_TIMEOUT = 5.0  # seconds a connection waits for another's write to end
CHECKPOINT_EVERY = 100  # commits between checkpoints: SQLite's own (every 1,000 pages) ran inside a commit, on the
# event loop, and held one alert in ~100 for 66-198 ms (bench/vs_homeassistant.py)

_COLUMNS = {table: set(re.findall(r"^\s+(\w+) [A-Z]", body, re.MULTILINE))
            for table, body in re.findall(r"CREATE TABLE IF NOT EXISTS (\w+) \((.*?)\n\);", SCHEMA, re.DOTALL)}
"""The columns of each table, read from SCHEMA."""


@dataclass(frozen=True)
class StoredSignal:
    """A signal row as stored; the service gives it its look from the current levels."""

    event_id: int
    level: str
    key: str
    title: str
    lamps: frozenset[str]
    started_at: float
    expires_at: float | None
    snoozed_until: float | None


class Store:
    """Synchronous SQLite access, used from the event loop thread (commits take ~0.2 ms)."""

    def __init__(self, path: Path) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open the store at {path}: {exc}") from None
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=OFF")  # the disk syncs are `sync()`'s, off the event loop
            self._db.execute("PRAGMA wal_autocheckpoint=0")  # and so is the checkpoint (`sync()`)
            self._check_intact()
            self._enable_incremental_vacuum(path)
            self._migrate()
            self._check_columns()
        except (sqlite3.Error, StoreError) as exc:
            self._db.close()
            raise StoreError(f"cannot use the journal {path}: {exc}. {_move_aside(path)}") from None
        self._db.row_factory = sqlite3.Row
        self.path = path
        self.commits = 0  # transactions committed so far (a sync covers all those before it began)
        self._checkpointed = 0  # commits when the last checkpoint ran
        self.on_commit: Callable[[], None] | None = None  # told after every commit, to schedule a sync

    def _check_intact(self) -> None:
        """A damaged page is found now, at start, not at the first event that touches it."""
        problems = [row[0] for row in self._db.execute("PRAGMA quick_check(3)").fetchall()]
        if problems != ["ok"]:
            raise StoreError(f"the file is damaged ({'; '.join(problems)})")

    def _enable_incremental_vacuum(self, path: Path) -> None:
        """A new journal is made with incremental vacuum; an older one is rewritten once (VACUUM) to get it."""
        if self._db.execute("PRAGMA auto_vacuum").fetchone()[0] == INCREMENTAL_VACUUM:
            return
        self._db.execute(f"PRAGMA auto_vacuum={INCREMENTAL_VACUUM}")  # takes effect at once on an empty file
        if self._db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
            log.info("the journal %s is rewritten once (VACUUM) so that pruned events give their space back "
                     "to the disk; this takes a moment for a big journal", path)
            self._db.execute("VACUUM")

    def _check_columns(self) -> None:
        """Every table has the columns this version writes: else the file is not a Lamplighter journal."""
        for table, wanted in _COLUMNS.items():
            found = {row[1] for row in self._db.execute(f"PRAGMA table_info({table})")}
            missing = sorted(wanted - found)
            if missing:
                raise StoreError(f"it is not a Lamplighter journal (table {table} has no {', '.join(missing)})")

    def _migrate(self) -> None:
        """Create a new journal at the latest version, or bring an older one up to it."""
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if not 0 <= version <= len(MIGRATIONS):
            raise StoreError(f"it is at version {version}, written by a newer Lamplighter (this one knows "
                             f"{len(MIGRATIONS)})")
        fresh = not self._db.execute("SELECT name FROM sqlite_master WHERE name='events'").fetchone()
        self._db.executescript(SCHEMA)
        for migration in () if fresh else MIGRATIONS[version:]:
            try:
                self._db.execute(migration)
            except sqlite3.OperationalError as exc:  # "duplicate column name": made by something else
                raise StoreError(f"it is not a Lamplighter journal at version {version} ({exc})") from None
        self._db.execute(f"PRAGMA user_version={len(MIGRATIONS)}")

    def close(self) -> None:
        """Close the journal; the last connection's closing checkpoint is synced (see the module docstring)."""
        with contextlib.suppress(sqlite3.Error):  # a journal that cannot be written closes all the same
            self._db.execute("PRAGMA synchronous=FULL")
        self._db.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Group writes into one transaction, committed (one fsync) when the block ends.

        Any error inside rolls everything back; a SQLite error is raised as StoreError. A
        transaction inside another joins it, so a batch of `record_event` calls is atomic.
        """
        if self._joins():
            yield
            return
        try:
            self._db.execute("BEGIN IMMEDIATE")
            yield
            self._db.execute("COMMIT")
            self.commits += 1
            if self.on_commit is not None:
                self.on_commit()
        except (sqlite3.Error, UnicodeEncodeError, OverflowError) as exc:
            self._rollback()
            raise StoreError(f"cannot write to the store at {self.path}: {exc}") from None
        except BaseException:
            self._rollback()
            raise

    def sync(self) -> None:
        """Make every commit so far durable against power loss: fsync the write-ahead log. Safe in a worker
        thread (no SQLite call); StoreError if the disk refuses."""
        wal = f"{self.path}-wal"
        try:
            descriptor = os.open(wal, os.O_RDONLY)
        except FileNotFoundError:
            return  # no log: everything is in the database file, which SQLite synced at its checkpoint
        except OSError as exc:
            raise StoreError(f"cannot sync the journal {wal}: {exc}") from None
        try:
            os.fsync(descriptor)
        except OSError as exc:
            raise StoreError(f"cannot sync the journal {wal}: {exc}") from None
        finally:
            os.close(descriptor)
        if self.commits - self._checkpointed >= CHECKPOINT_EVERY:
            self._checkpointed = self.commits
            self._checkpoint()

    def _checkpoint(self) -> None:
        """Copy the log into the database file so it does not grow, on a connection of this thread's own.
        PASSIVE: it waits for nobody, and the event loop's connection goes on writing meanwhile."""
        try:
            with contextlib.closing(sqlite3.connect(self.path, timeout=BUSY_TIMEOUT)) as db:
                db.execute("PRAGMA synchronous=FULL")  # the log before the copy, the database file after it
                db.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error as exc:
            log.warning("journal checkpoint failed (%s); the log is copied at the next one", exc)

    def _joins(self) -> bool:
        """Whether a transaction is open to join (a closed store opens none: BEGIN then says why)."""
        try:
            return self._db.in_transaction
        except sqlite3.Error:
            return False

    def _transaction(self, statements: Iterable[tuple[str, tuple[Any, ...]]]) -> None:
        """Run statements in one transaction."""
        with self.transaction():
            for sql, params in statements:
                self._db.execute(sql, params)

    def record_event(
        self,
        event: Event,
        outcome: Outcome,
        reasons: Iterable[str],
        *,
        signal_id: int | None = None,
        new_signal: Signal | None = None,
        refreshed: Signal | None = None,
        ended: Iterable[Signal] = (),
        end_reason: str = "",
    ) -> int:
        """Store an event with its outcome and the signal changes, atomically; return its id."""
        with self.transaction():
            event_id = self._insert_event(event, outcome, list(reasons), signal_id)
            if new_signal is not None:
                self._insert_signal(new_signal, event_id)
            if refreshed is not None:
                self._db.execute("UPDATE signals SET expires_at=? WHERE event_id=?",
                                 (refreshed.expires_at, refreshed.event_id))
            for signal in ended:
                self._end(signal.event_id, event.received_at, end_reason)
        return event_id

    def _rollback(self) -> None:
        try:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
        except sqlite3.Error:
            pass  # the connection is unusable; the original error is what the caller reports

    def _insert_event(self, event: Event, outcome: Outcome, reasons: list[str], signal_id: int | None) -> int:
        cursor = self._db.execute(
            "INSERT INTO events (received_at, level, title, body, sender, source, key, status, labels,"
            " outcome, reasons, signal_id) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (event.received_at, event.level, event.title, event.body, event.sender, event.source, event.key,
             str(event.status), json.dumps(event.labels), str(outcome), json.dumps(reasons), signal_id),
        )
        event_id = int(cursor.lastrowid or 0)
        if signal_id is None and outcome is Outcome.SHOWN:
            self._db.execute("UPDATE events SET signal_id=? WHERE id=?", (event_id, event_id))
        return event_id

    def _insert_signal(self, signal: Signal, event_id: int) -> None:
        self._db.execute(
            "INSERT INTO signals (event_id, level, key, title, lamps, started_at, expires_at) VALUES (?,?,?,?,?,?,?)",
            (event_id, signal.level, signal.key, signal.title, json.dumps(sorted(signal.lamps)),
             signal.started_at, signal.expires_at),
        )

    def _end(self, event_id: int, at: float, reason: str) -> None:
        self._db.execute("UPDATE signals SET ended_at=?, end_reason=? WHERE event_id=? AND ended_at IS NULL",
                         (at, reason, event_id))

    def end_signals(self, event_ids: Iterable[int], at: float, reason: str) -> None:
        """End signals (expired, acknowledged) in one transaction."""
        self._transaction(
            ("UPDATE signals SET ended_at=?, end_reason=? WHERE event_id=? AND ended_at IS NULL", (at, reason, i))
            for i in event_ids
        )

    def set_signal_lamps(self, lamps: Mapping[int, frozenset[str]]) -> None:
        """Move active signals to other lamps (a reloaded configuration) in one transaction."""
        self._transaction(("UPDATE signals SET lamps=? WHERE event_id=?", (json.dumps(sorted(names)), event_id))
                          for event_id, names in lamps.items())

    def snooze_signals(self, event_ids: Iterable[int], until: float | None) -> None:
        self._transaction(("UPDATE signals SET snoozed_until=? WHERE event_id=?", (until, i)) for i in event_ids)

    def set_setting(self, name: str, value: object) -> None:
        """Remember a small JSON value (the global snooze) across restarts; None forgets it."""
        if value is None:
            self._transaction([("DELETE FROM settings WHERE name=?", (name,))])
        else:
            self._transaction([("INSERT OR REPLACE INTO settings (name, value) VALUES (?, ?)",
                                (name, json.dumps(value)))])

    def setting(self, name: str) -> Any:
        row = self._db.execute("SELECT value FROM settings WHERE name=?", (name,)).fetchone()
        return None if row is None else json.loads(row["value"])

    def active_signals(self) -> list[StoredSignal]:
        rows = self._db.execute("SELECT * FROM signals WHERE ended_at IS NULL ORDER BY event_id").fetchall()
        return [
            StoredSignal(row["event_id"], row["level"], row["key"], row["title"], frozenset(json.loads(row["lamps"])),
                         row["started_at"], row["expires_at"], row["snoozed_until"])
            for row in rows
        ]

    def signal_end(self, event_id: int) -> tuple[float, str] | None:
        """When and why a signal ended, or None if it is active or unknown."""
        row = self._db.execute("SELECT ended_at, end_reason FROM signals WHERE event_id=?", (event_id,)).fetchone()
        return None if row is None or row["ended_at"] is None else (row["ended_at"], row["end_reason"])

    def recent_events(self, limit: int) -> list[StoredEvent]:
        rows = self._db.execute("SELECT * FROM events ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
        return [_event_row(row) for row in rows]

    def event(self, event_id: int) -> StoredEvent | None:
        if not 0 < event_id <= MAX_EVENT_ID:
            return None  # SQLite would raise OverflowError for a number it cannot hold
        row = self._db.execute("SELECT * FROM events WHERE id=?", (event_id,)).fetchone()
        return None if row is None else _event_row(row)

    def events_since(self, since: float, limit: int) -> list[StoredEvent]:
        """The newest `limit` events received at or after `since`, newest first."""
        rows = self._db.execute("SELECT * FROM events WHERE received_at >= ? ORDER BY id DESC LIMIT ?",
                                (since, limit)).fetchall()
        return [_event_row(row) for row in rows]

    def count_events(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM events").fetchone()[0])

    def summary(self) -> JournalSummary:
        """Check the journal page by page and count what it holds."""
        return _summary(self._db)

    def seen_since(self, since: float) -> list[tuple[str, str, float, bool]]:
        """(level, dedup key, last seen, explicit key?) of keys shown or deduplicated since `since`
        and not resolved after."""
        rows = self._db.execute(
            "SELECT level, key, title, status, max(received_at) AS at FROM events WHERE received_at >= ?"
            " AND (outcome IN ('shown', 'deduplicated') OR status = 'resolved') GROUP BY level, key, title, status",
            (since,),
        ).fetchall()
        resolved: dict[str, float] = {}
        for row in rows:
            if row["status"] == "resolved":
                key = row["key"] or f"{row['level']}:{row['title']}"
                resolved[key] = max(row["at"], resolved.get(key, row["at"]))
        seen = [(row["level"], row["key"] or f"{row['level']}:{row['title']}", row["at"], bool(row["key"]))
                for row in rows if row["status"] == "firing"]
        return [entry for entry in seen if entry[2] > resolved.get(entry[1], float("-inf"))]

    def last_event_per_source(self) -> dict[str, float]:
        rows = self._db.execute("SELECT source, max(received_at) AS at FROM events GROUP BY source").fetchall()
        return {row["source"]: row["at"] for row in rows}

    def save_snapshot(self, lamp: str, state: LampState) -> None:
        self._transaction([("INSERT OR REPLACE INTO snapshots (lamp, state) VALUES (?, ?)",
                            (lamp, json.dumps(state.to_dict())))])

    def delete_snapshot(self, lamp: str) -> None:
        self._transaction([("DELETE FROM snapshots WHERE lamp=?", (lamp,))])

    def snapshots(self) -> dict[str, LampState]:
        rows = self._db.execute("SELECT lamp, state FROM snapshots").fetchall()
        return {row["lamp"]: LampState.from_dict(json.loads(row["state"])) for row in rows}

    # ---- queries for the dashboard's timeline ------------------------------------------------

    FILTERABLE = ("level", "source", "sender", "outcome")

    def _check_filterable(self, columns: Iterable[str]) -> None:
        unknown = sorted(set(columns) - set(self.FILTERABLE))
        if unknown:
            raise ValueError(f"events cannot be filtered by {', '.join(unknown)} (only {', '.join(self.FILTERABLE)})")

    def find_events(self, equal: dict[str, str], limit: int) -> list[StoredEvent]:
        """The newest events whose columns have the given values, e.g. {"level": "911", "sender": "ci"}."""
        self._check_filterable(equal)
        where = " AND ".join(f"{column} = ?" for column in equal) or "1"
        rows = self._db.execute(f"SELECT * FROM events WHERE {where} ORDER BY id DESC LIMIT ?",
                                (*equal.values(), limit)).fetchall()
        return [_event_row(row) for row in rows]

    def event_values(self, column: str, limit: int) -> list[str]:
        """The distinct values of a filterable column, the most recently seen first."""
        self._check_filterable([column])
        rows = self._db.execute(f"SELECT {column} AS value FROM events GROUP BY {column} ORDER BY max(id) DESC"
                                " LIMIT ?", (limit,)).fetchall()
        return [row["value"] for row in rows]

    def events_per_hour(self, since: float) -> list[tuple[float, str, int]]:
        """(start of the hour, level, count) for events received since `since`; hours begin on the UTC hour."""
        rows = self._db.execute(
            "SELECT CAST(received_at / 3600 AS INTEGER) * 3600 AS hour, level, count(*) AS count FROM events"
            " WHERE received_at >= ? GROUP BY hour, level ORDER BY hour", (since,),
        ).fetchall()
        return [(float(row["hour"]), row["level"], int(row["count"])) for row in rows]

    # ---- retention: run from a worker thread, each call on a connection of its own -------------

    def _worker_connection(self) -> sqlite3.Connection:
        """A connection for one call from a worker thread (the main one belongs to the event loop)."""
        return sqlite3.connect(self.path, isolation_level=None, timeout=BUSY_TIMEOUT)

    def count_events_apart(self) -> int:
        """`count_events` on a connection of its own, for a worker thread."""
        with contextlib.closing(self._worker_connection()) as db:
            try:
                return int(db.execute("SELECT count(*) FROM events").fetchone()[0])
            except sqlite3.Error as exc:
                raise StoreError(f"cannot read the journal at {self.path}: {exc}") from None

    def prune_batch(self, before: float, excess: int, limit: int) -> int:
        """Delete up to `limit` of the oldest events that were received before `before` or are among the
        `excess` oldest, in one transaction; never an active signal's event. Returns how many went.

        Events are taken oldest first and the batch ends at the first one that is to stay, so a call
        reads at most `limit` rows, however big the journal."""
        with contextlib.closing(self._worker_connection()) as db:
            try:
                db.execute("BEGIN IMMEDIATE")
                rows = db.execute(f"SELECT id, received_at FROM events WHERE id NOT IN ({ACTIVE_SIGNAL_EVENTS})"
                                  " ORDER BY id LIMIT ?", (limit,)).fetchall()
                doomed = 0
                while doomed < len(rows) and (rows[doomed][1] < before or doomed < excess):
                    doomed += 1
                if doomed:
                    last = rows[doomed - 1][0]
                    db.execute(f"DELETE FROM signals WHERE event_id <= ? AND event_id NOT IN ({ACTIVE_SIGNAL_EVENTS})",
                               (last,))
                    db.execute(f"DELETE FROM events WHERE id <= ? AND id NOT IN ({ACTIVE_SIGNAL_EVENTS})", (last,))
                db.execute("COMMIT")
            except sqlite3.Error as exc:
                raise StoreError(f"cannot prune the journal at {self.path}: {exc}") from None
        return doomed

    def vacuum_step(self, pages: int) -> int:
        """Give up to `pages` free pages back to the disk (the file shrinks); returns how many remain free."""
        with contextlib.closing(self._worker_connection()) as db:
            try:
                db.executescript(f"PRAGMA incremental_vacuum({int(pages)})")  # execute() frees only one page
                return int(db.execute("PRAGMA freelist_count").fetchone()[0])
            except sqlite3.Error as exc:
                raise StoreError(f"cannot vacuum the journal at {self.path}: {exc}") from None


def backup(source: Path, target: Path) -> JournalSummary:
    """Copy the journal at `source` to `target` with SQLite's online backup API, safe while a daemon writes
    to it: the copy is the journal as of one moment (every event committed before it began). The copy is
    written beside `target` and renamed into place only once it passes an integrity check."""
    if not source.is_file():
        raise StoreError(f"there is no journal at {source}")
    try:
        return _copy(source, target)
    except StoreError as exc:
        raise StoreError(f"cannot back up {source} to {target}: {exc}") from None


def restore(source: Path, journal: Path) -> tuple[JournalSummary, Path | None]:
    """Put the backup `source` in place of `journal`, keeping the old one as JOURNAL.before-restore (with
    its WAL); returns what the restored journal holds and where the old one is. Nothing is touched
    unless the backup passes an integrity check and opens as a journal of this version."""
    incoming = journal.with_name(journal.name + ".restoring")
    try:
        if not source.is_file():
            raise StoreError("no such file")
        _copy(source, incoming)
        with contextlib.closing(Store(incoming)) as store:  # brings an older journal up to this version
            summary = store.summary()
    except StoreError as exc:
        incoming.unlink(missing_ok=True)
        raise StoreError(f"cannot restore from {source}: {exc}") from None
    before = journal.with_name(journal.name + ".before-restore") if journal.exists() else None
    for suffix in ("", "-wal"):
        if Path(f"{journal}{suffix}").exists():
            os.replace(f"{journal}{suffix}", f"{before}{suffix}")
    Path(f"{journal}-shm").unlink(missing_ok=True)
    os.replace(incoming, journal)
    return summary, before


def _copy(source: Path, target: Path) -> JournalSummary:
    """Copy a journal page by page into `target` (via a .partial file), check it and count what it holds."""
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    try:
        with contextlib.closing(sqlite3.connect(source, timeout=BUSY_TIMEOUT)) as db, \
                contextlib.closing(sqlite3.connect(partial)) as copy:
            db.backup(copy)
            summary = _summary(copy)
        os.replace(partial, target)
    except (OSError, sqlite3.Error, StoreError) as exc:
        partial.unlink(missing_ok=True)
        raise StoreError(str(exc)) from None
    return summary


@dataclass(frozen=True)
class JournalSummary:
    """What a journal holds, as `backup` and `restore` report it."""

    events: int
    active_signals: int
    snapshots: int

    def __str__(self) -> str:
        return f"{self.events} events, {self.active_signals} active signal(s), {self.snapshots} restore snapshot(s)"


def _summary(db: sqlite3.Connection) -> JournalSummary:
    """Check a journal page by page and count what it holds; StoreError if it is damaged."""
    problems = [row[0] for row in db.execute("PRAGMA integrity_check(3)").fetchall()]
    if problems != ["ok"]:
        raise StoreError(f"the file is damaged ({'; '.join(problems)})")
    try:
        counts = db.execute("SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM signals WHERE ended_at IS"
                            " NULL), (SELECT count(*) FROM snapshots)").fetchone()
    except sqlite3.OperationalError as exc:
        raise StoreError(f"it is not a Lamplighter journal ({exc})") from None
    return JournalSummary(*counts)


def _move_aside(path: Path) -> str:
    return (f"Move it aside (mv {path} {path}.old) and start again: a new, empty journal is made; the old "
            "file keeps what it had (sqlite3 can .recover a damaged one)")


def _event_row(row: sqlite3.Row) -> StoredEvent:
    return StoredEvent(
        id=row["id"], received_at=row["received_at"], level=row["level"], title=row["title"], body=row["body"],
        sender=row["sender"], source=row["source"], key=row["key"], status=Status(row["status"]),
        labels=json.loads(row["labels"]), outcome=Outcome(row["outcome"]), reasons=tuple(json.loads(row["reasons"])),
        signal_id=row["signal_id"],
    )
