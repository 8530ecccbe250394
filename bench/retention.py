"""Retention at scale: a million events into one journal with `retention: 1d`, across simulated days.

The journal (lamplighter.store.Store, WAL, full fsync) takes the events in transactions of
1,000, spread evenly over the simulated days; every simulated hour the service's own prune
(lamplighter.service.retention.Retention.prune, the hourly deadline of the daemon) runs as of
that hour. One 911 stays active from the first minute and a lamp's restore snapshot is stored:
both must survive. Reports, per simulated day, the events kept and the file size (database
plus WAL), and the largest size seen: the bound that the README states.

    .venv/bin/python bench/retention.py [--events 1000000] [--days 10] [--body 200]

Writes bench/results/retention.json. Sizes are reported, not asserted; the exit status is 1
only if the active signal's event or the snapshot was lost.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from lamplighter.config import GuardsConfig, RetentionConfig
from lamplighter.model import LampState, Outcome, Signal, make_event
from lamplighter.service.retention import PRUNE_EVERY, Retention
from lamplighter.store import Store

DAY = 86400.0
START = 1_800_000_000.0
TRANSACTION = 1000
RESULTS = Path(__file__).parent / "results" / "retention.json"


def file_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in (path, path.with_name(path.name + "-wal")) if p.exists())


def keep_alarm(store: Store) -> int:
    """The 911 that stays active through the whole run, and the desk's restore snapshot."""
    event = make_event("911", "payments down", received_at=START)
    signal = Signal(0, "911", "911:payments down", "payments down", 100, LampState(on=True, color="#ff0000"),
                    frozenset({"desk"}), START, None)
    event_id = store.record_event(event, Outcome.SHOWN, [], new_signal=signal)
    store.save_snapshot("desk", LampState(on=True, color="#ffffff"))
    return event_id


def feed(store: Store, count: int, at: float, serial: int, body: str) -> None:
    """`count` events received at `at`, as a storm of distinct alerts would leave them."""
    for first in range(0, count, TRANSACTION):
        with store.transaction():
            for n in range(first, min(count, first + TRANSACTION)):
                event = make_event("912", f"disk {serial + n}", received_at=at, body=body, sender="monitor",
                                   key=f"disk-{(serial + n) % 100}", labels={"host": f"h{n % 7}"})
                store.record_event(event, Outcome.DEDUPLICATED, ["deduplicated"], signal_id=None)


async def run(events: int, days: int, body: str, path: Path) -> dict[str, object]:
    store = Store(path)
    alarm = keep_alarm(store)
    retention = Retention(store, RetentionConfig(max_age=DAY), GuardsConfig(), START)
    hours = int(days * DAY / PRUNE_EVERY)
    per_hour = events // hours
    largest, rows, began = 0, [], time.monotonic()
    for hour in range(hours):
        now = START + hour * PRUNE_EVERY
        feed(store, per_hour, now, hour * per_hour, body)
        largest = max(largest, file_bytes(path))
        await retention.prune(now + PRUNE_EVERY - 1)
        if (hour + 1) % 24 == 0:
            rows.append({"day": (hour + 1) // 24, "events_kept": store.count_events(), "bytes": file_bytes(path),
                         "largest_bytes": largest, "seconds": round(time.monotonic() - began, 1)})
            print(f"day {rows[-1]['day']:>3}: {rows[-1]['events_kept']:>8} events kept, "
                  f"{rows[-1]['bytes'] / 1e6:6.1f} MB now, {largest / 1e6:6.1f} MB at most, "
                  f"{rows[-1]['seconds']:6.1f} s", flush=True)
    survived = store.event(alarm) is not None and [s.event_id for s in store.active_signals()] == [alarm] \
        and "desk" in store.snapshots()
    store.close()
    return {"events": per_hour * hours, "days": days, "body_chars": len(body), "events_per_day": per_hour * 24,
            "largest_bytes": largest, "largest_bytes_per_kept_event": round(largest / max(r["events_kept"]
                                                                                            for r in rows), 1),
            "alarm_and_snapshot_survived": survived, "days_table": rows,
            "seconds": round(time.monotonic() - began, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=10)
    parser.add_argument("--body", type=int, default=200, help="characters of body text per event")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        result = asyncio.run(run(args.events, args.days, "x" * args.body, Path(tmp) / "lamplighter.db"))
    print(f"{result['events']} events over {result['days']} days, retention 1d: the journal stayed under "
          f"{result['largest_bytes'] / 1e6:.1f} MB ({result['largest_bytes_per_kept_event']} bytes per kept "
          f"event); active 911 and snapshot survived: {result['alarm_and_snapshot_survived']}")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    raise SystemExit(0 if result["alarm_and_snapshot_survived"] else 1)


if __name__ == "__main__":
    main()
