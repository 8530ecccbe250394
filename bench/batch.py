"""Batch: an Alertmanager notification of 11,000 alerts while /healthz is asked every 20 ms.

One real `lamplighter run` with one `virtual://desk` lamp and an Alertmanager webhook source.
Another process polls `GET /healthz` back to back (20 ms apart) for as long as the batch takes;
the main thread POSTs the batch (one request, 11,000 firing alerts, each with its own
fingerprint). Reports how long the batch took to be answered, every /healthz round trip
during it (p50/p99/max: how long the event loop was held at most), and whether all 11,000
events are in the journal afterwards.

    .venv/bin/python bench/batch.py [--alerts 11000]

Writes bench/results/batch.json. Timings are reported, never asserted.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sqlite3
import sys
import time
from collections.abc import Callable
from multiprocessing.managers import ListProxy, SyncManager
from pathlib import Path
from threading import Event as EventType
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx

from bench._stats import daemon, format_summary, machine, machine_line, summary_ms, write_results

HOOK_TOKEN = "bench-alertmanager-token-0123456789"
CONFIG = f"""\
lamps: {{desk: virtual://desk}}
sources:
  - {{type: alertmanager, token: {HOOK_TOKEN}}}
"""
POLL_GAP = 0.02


def notification(alerts: int) -> bytes:
    """One Alertmanager webhook notification (version 4) with `alerts` firing alerts."""
    items = [{"status": "firing", "labels": {"alertname": f"Bench{i}", "severity": "critical"},
              "annotations": {"summary": f"bench alert {i}"}, "fingerprint": f"{i:016x}",
              "startsAt": "2026-12-03T00:00:00Z"} for i in range(alerts)]
    return json.dumps({"version": "4", "status": "firing", "receiver": "lamplighter", "groupKey": "{}:{}",
                       "alerts": items}).encode()


def poll(url: str, stop: EventType, samples: ListProxy[float]) -> None:
    """Ask /healthz back to back until `stop`; runs in its own process, so the poster's GIL is not in its times."""
    found: list[float] = []
    with httpx.Client(base_url=url, timeout=30) as client:
        while not stop.is_set():
            started = time.perf_counter()
            client.get("/healthz")
            found.append(time.perf_counter() - started)
            time.sleep(POLL_GAP)
    samples.extend(found)


def polled(url: str, manager: SyncManager, seconds: float | None,
           during: Callable[[], Any] | None = None) -> tuple[list[float], Any]:
    """/healthz round trips from another process while `during` runs (or for `seconds`)."""
    stop, samples = manager.Event(), manager.list()
    poller = multiprocessing.Process(target=poll, args=(url, stop, samples))
    poller.start()
    time.sleep(seconds if during is None else 0.3)
    result = during() if during is not None else None
    stop.set()
    poller.join(timeout=60)
    return list(samples), result


def run(alerts: int) -> dict[str, Any]:
    info = machine()
    print(machine_line(info))
    body = notification(alerts)
    with daemon("batch", CONFIG, server="max_body_bytes: 4000000") as d, \
            httpx.Client(base_url=d.url, timeout=120) as client, multiprocessing.Manager() as manager:
        def post() -> tuple[httpx.Response, float]:
            started = time.perf_counter()
            answer = client.post("/hooks/alertmanager", content=body,
                                 headers={"Authorization": f"Bearer {HOOK_TOKEN}", "Content-Type": "application/json"})
            return answer, time.perf_counter() - started

        idle, _ = polled(d.url, manager, 1.0)
        during, (answer, took) = polled(d.url, manager, None, post)
        with sqlite3.connect(f"file:{d.workdir / 'state' / 'lamplighter.db'}?mode=ro", uri=True) as journal:
            stored = journal.execute("SELECT count(*) FROM events WHERE source = 'alertmanager'").fetchone()[0]
    report = {"machine": info, "alerts": alerts, "status": answer.status_code,
              "answered": len(answer.json().get("events", [])) if answer.status_code == 202 else 0,
              "batch_seconds": round(took, 3), "healthz_idle": summary_ms(idle, (50, 99)),
              "healthz_during_batch": summary_ms(during, (50, 99)), "stored": stored}
    print(f"batch of {alerts} alerts: HTTP {answer.status_code}, {report['answered']} events answered, "
          f"in {took:.2f} s ({alerts / took:,.0f} alerts/s)")
    print(format_summary("/healthz idle (ms)", report["healthz_idle"]))
    print(format_summary("/healthz during the batch (ms)", report["healthz_during_batch"]))
    print(f"events of the batch in the journal afterwards: {stored} of {alerts}")
    write_results("batch", report)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=11_000)
    run(parser.parse_args().alerts)


if __name__ == "__main__":
    main()
