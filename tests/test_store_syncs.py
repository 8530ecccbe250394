"""The journal never waits for the disk on the thread that commits (the event loop's).

Found in the side-by-side benchmark: the first commit after each checkpoint took 0.5-2 ms, once
46 ms, with an event's lamp command waiting behind it. SQLite (synchronous=NORMAL) syncs the
write-ahead log's header on the committing thread when it starts the log over after a
checkpoint. The disk syncs belong to `Store.sync` and the checkpoint, in a worker thread.

What each thread syncs is seen as the kernel sees it: the store runs in a child process under
strace, which names the thread of every fsync/fdatasync. Markers written to stderr split the
trace into opening, committing and closing. strace is in the Makefile's TEST_PEERS: without
it these tests fail, they do not skip.
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap

import pytest

COMMITS = 250  # over two checkpoints (store.CHECKPOINT_EVERY = 100)

CHILD = textwrap.dedent("""
    import os, sys, threading
    from pathlib import Path
    from lamplighter.store import Store

    def mark(text):
        os.write(2, f"MARK {text}\\n".encode())

    store = Store(Path(sys.argv[1]))
    mark(f"committing {threading.get_native_id()}")
    for i in range(int(sys.argv[2])):
        with store.transaction():
            store.set_setting("counter", i)
        worker = threading.Thread(target=store.sync)  # as service/durability.py runs it
        worker.start()
        worker.join()
    mark(f"checkpointed {store._checkpointed}")
    store.close()
    mark("closed")
""")


@pytest.fixture(scope="module")
def syncs(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, list[str]], int]:
    """The fsync/fdatasync calls of the committing thread in each phase, and the other threads' count
    (one traced run for both tests)."""
    tmp_path = tmp_path_factory.mktemp("syncs")
    trace = tmp_path / "strace.txt"
    try:
        traced = subprocess.run(["strace", "-f", "-qq", "-e", "trace=fsync,fdatasync,write", "-o", str(trace),
                                 sys.executable, "-c", CHILD, str(tmp_path / "journal.db"), str(COMMITS)],
                                timeout=120, capture_output=True, text=True)
    except FileNotFoundError:
        raise AssertionError("strace is not installed: `make test` installs it (the Makefile's TEST_PEERS)") from None
    assert traced.returncode == 0, f"strace or the store failed: {traced.stderr[-2000:]}"
    lines = trace.read_text().splitlines()
    main = next(m.group(1) for line in lines if (m := re.search(r'MARK committing (\d+)', line)))
    phase, by_phase, others = "opening", {"opening": [], "committing": [], "closing": []}, 0
    for line in lines:
        tid, call = re.match(r"(\d+)\s+(.*)", line).groups()  # type: ignore[union-attr]  # strace pads the id
        if "MARK committing" in call:
            phase = "committing"
        elif "MARK checkpointed" in call:
            assert int(re.search(r"MARK checkpointed (\d+)", call).group(1)) >= 200, "no checkpoint ran"  # type: ignore[union-attr]
            phase = "closing"
        elif call.startswith(("fsync(", "fdatasync(")):
            if tid == main:
                by_phase[phase].append(call)
            else:
                others += 1
    return by_phase, others


def test_commits_after_a_checkpoint_never_sync_on_the_committing_thread(
        syncs: tuple[dict[str, list[str]], int]) -> None:
    by_phase, others = syncs
    assert by_phase["committing"] == [], f"the committing thread waited for the disk: {by_phase['committing']}"
    assert others >= COMMITS  # every sync ran, in the worker threads: one per commit, and the checkpoints'


def test_closing_the_journal_syncs_what_its_last_checkpoint_copies(syncs: tuple[dict[str, list[str]], int]) -> None:
    # The last connection to close copies the log into the database file and deletes the log:
    # that copy must be on the disk before the log is gone.
    by_phase, _ = syncs
    assert any(call.startswith("fdatasync(") or call.startswith("fsync(") for call in by_phase["closing"])
