"""Reload: how long `POST /api/reload` takes to answer, with and without events arriving meanwhile.

Starts `lamplighter run` with one `virtual://desk` lamp, then reloads N times (default 30)
for each case, rewriting the file before each reload:

- nothing changed: the same file again (read, checked, compared, nothing swapped);
- a lamp added / removed: `virtual://porch` joins, then leaves (a removed lamp is put back
  to its snapshot before the answer);
- the same under a stream of events: two threads post 912s in a tight loop meanwhile; every
  event answered 202 is then looked up in the journal (stored, and routed: `shown`).

    .venv/bin/python bench/reload.py [--reloads 30]

Writes bench/results/reload.json. Timings are reported, never asserted.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._stats import daemon, format_summary, machine, machine_line, summary_ms, write_results
from tests.daemon import Daemon

GUARDS = "guards: {rate_limit: {per_sender: null, per_source: null}}\n"
ONE = f"lamps: {{desk: virtual://desk}}\n{GUARDS}"
TWO = f"lamps: {{desk: virtual://desk, porch: virtual://porch}}\n{GUARDS}"


def reload_times(d: Daemon, bodies: tuple[str, str], count: int) -> list[float]:
    took = []
    with d.client() as client:
        for n in range(count):
            d.write_config(bodies[n % 2])
            started = time.perf_counter()
            answer = client.post("/api/reload")
            took.append(time.perf_counter() - started)
            if answer.status_code != 200:
                raise RuntimeError(f"reload refused: {answer.text}")
    return took


def post_until(d: Daemon, prefix: str, accepted: list[int], stop: threading.Event) -> None:
    with d.client() as client:
        n = 0
        while not stop.is_set():
            answer = client.post("/api/events", json={"level": "912", "title": f"{prefix}-{n}"})
            if answer.status_code == 202:
                accepted.append(answer.json()["id"])
            n += 1


def under_events(d: Daemon, count: int) -> tuple[list[float], dict[str, Any]]:
    accepted: list[int] = []
    stop = threading.Event()
    senders = [threading.Thread(target=post_until, args=(d, f"s{i}", accepted, stop)) for i in range(2)]
    for sender in senders:
        sender.start()
    try:
        took = reload_times(d, (TWO, ONE), count)
    finally:
        stop.set()
        for sender in senders:
            sender.join(10)
    with d.client() as client:
        stored = {e["id"]: e["outcome"] for e in client.get("/api/events", params={"limit": 5000}).json()}
    counts = {"accepted": len(accepted), "stored": sum(i in stored for i in accepted),
              "shown": sum(stored.get(i) == "shown" for i in accepted)}
    return took, counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reloads", type=int, default=30)
    count = parser.parse_args().reloads
    info = machine()
    print(machine_line(info))
    results: dict[str, Any] = {"machine": info}
    with daemon("reload", ONE) as d:
        for label, bodies in (("nothing changed", (ONE, ONE)), ("a lamp added / removed", (TWO, ONE))):
            results[label] = summary_ms(reload_times(d, bodies, count))
            print(format_summary(f"POST /api/reload, {label}", results[label]))
        took, counts = under_events(d, count)
    results["a lamp added / removed, events arriving"] = {**summary_ms(took), **counts}
    print(format_summary("POST /api/reload, a lamp added / removed, events arriving", summary_ms(took)))
    print(f"events during those reloads: {counts['accepted']} accepted, {counts['stored']} stored, "
          f"{counts['shown']} shown")
    print(f"wrote {write_results('reload', results)}")


if __name__ == "__main__":
    main()
