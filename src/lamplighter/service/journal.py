"""The journal file as a whole: the lock a daemon holds on it, backups while it runs, and restores.

    lock = hold_journal(config.state_dir)      # a daemon: held until the process ends
    backup_journal(config, Path("ll.db"))      # safe while the daemon writes
    restore_journal(config, Path("ll.db"))     # refused while a daemon holds the lock
"""

from __future__ import annotations

import fcntl
from pathlib import Path
from typing import IO

from lamplighter.config import Config
from lamplighter.errors import StoreError
from lamplighter.service.core import DATABASE_NAME
from lamplighter.store import JournalSummary, backup, restore

LOCK_NAME = "lamplighter.lock"


def hold_journal(state_dir: Path) -> IO[str]:
    """Take the state directory's lock (released when the returned file is closed or the process ends);
    StoreError if another process holds it."""
    state_dir.mkdir(parents=True, exist_ok=True)
    lock = (state_dir / LOCK_NAME).open("a", encoding="utf-8")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        lock.close()
        raise StoreError(f"a Lamplighter daemon is running on {state_dir} (it holds {state_dir / LOCK_NAME}); "
                         "stop it first") from None
    return lock


def journal_path(config: Config) -> Path:
    return config.state_dir / DATABASE_NAME


def backup_journal(config: Config, target: Path) -> JournalSummary:
    """Copy the journal to `target`, consistent even while the daemon writes to it."""
    return backup(journal_path(config), target)


def restore_journal(config: Config, source: Path) -> tuple[JournalSummary, Path | None]:
    """Replace the journal with the backup `source` while no daemon runs; returns what it holds and where
    the old journal was kept."""
    with hold_journal(config.state_dir):
        return restore(source, journal_path(config))
