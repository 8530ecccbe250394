"""Storm: N events as fast as two concurrent keep-alive clients can send them, default guards.

One real `lamplighter run` with one `virtual://desk` lamp and the default guards (no rate
limit override). Two threads, each with its own httpx.Client, send their half of the
events back to back from four senders across the three default levels; every fifth event
repeats one of five "hot" titles so deduplication has something to do.

Reports accepted/s (202s over wall time), outcome counts, POST round trips, whether every
id answered 202 is in GET /api/events (LOST), and the lamp's state changes
(lamplighter_lamp_applies_total{lamp="desk"}), which the rate limits should bound, both
at the end of the storm and after the signals' holds have run out.

    .venv/bin/python bench/storm.py [--events 5000] [--settle 11]

Writes bench/results/storm.json. Timings are reported, never asserted; the exit status is
1 only when an accepted event is missing from the store.
"""

from __future__ import annotations

import argparse
import collections
import itertools
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx

from bench._stats import (
    SseReader,
    cpu_seconds,
    daemon,
    format_summary,
    machine,
    machine_line,
    metric_value,
    parse_metrics,
    summary_ms,
    write_results,
)
from lamplighter.config import GuardsConfig, RateConfig
from tests.daemon import Daemon

LAMP = "desk"
CONFIG = f"lamps: {{{LAMP}: virtual://{LAMP}}}\n"
CLIENTS = 2
SENDERS = ("storm-a", "storm-b", "storm-c", "storm-d")
LEVELS = ("911", "912", "door")
LIST_LIMIT = 5000  # the API's maximum for GET /api/events?limit=


def describe(rate: RateConfig | None) -> str:
    return "off" if rate is None else f"burst {rate.burst} then 1/{rate.every:g}s"


def shown_bound(wall: float, senders: int, levels: int) -> float | None:
    """The most events the default rate limits let through in `wall` seconds (dedup aside)."""
    limits = GuardsConfig().rate_limit
    bounds = [keys * (rate.burst + wall / rate.every)
              for keys, rate in ((senders, limits.per_sender), (levels, limits.per_source)) if rate is not None]
    return min(bounds) if bounds else None


def payload(i: int) -> dict[str, str]:
    title = f"hot {i % 25 // 5}" if i % 5 == 0 else f"storm event {i}"
    return {"level": LEVELS[i % len(LEVELS)], "title": title, "sender": SENDERS[i % len(SENDERS)]}


class Sender(threading.Thread):
    """Sends its share of the events over one keep-alive connection, recording each answer."""

    def __init__(self, d: Daemon, indexes: range, start: threading.Barrier) -> None:
        super().__init__(name=f"sender {indexes.start}", daemon=True)
        self.client = d.client()
        self.bodies = [payload(i) for i in indexes]
        self.barrier = start
        self.answers: list[tuple[float, int, dict[str, Any] | None]] = []  # (rtt, status, json)
        self.errors: list[str] = []
        self.finished_at = 0.0

    def run(self) -> None:
        with self.client:
            self.client.get("/healthz")  # open the connection before the clock starts
            self.barrier.wait()
            for body in self.bodies:
                t0 = time.perf_counter()
                try:
                    response = self.client.post("/api/events", json=body)
                except httpx.HTTPError as exc:
                    self.errors.append(repr(exc))
                    continue
                rtt = time.perf_counter() - t0
                try:
                    answer = response.json()
                except ValueError:
                    answer = None
                self.answers.append((rtt, response.status_code, answer))
            self.finished_at = time.perf_counter()


def run(events: int, settle: float) -> tuple[dict[str, Any], int]:
    info = machine()
    print(machine_line(info))
    limits = GuardsConfig().rate_limit
    print(f"storm: {events} events, {CLIENTS} keep-alive clients, senders {', '.join(SENDERS)}, "
          f"levels {', '.join(LEVELS)}, default guards (per_sender {describe(limits.per_sender)}, "
          f"per_source {describe(limits.per_source)})")
    began = time.perf_counter()
    with daemon("storm", CONFIG) as d:
        assert d.process is not None
        sse = SseReader(d, LAMP)
        initial = sse.open()
        barrier = threading.Barrier(CLIENTS + 1)
        senders = [Sender(d, range(k, events, CLIENTS), barrier) for k in range(CLIENTS)]
        for s in senders:
            s.start()
        cpu_before, client_cpu_before = cpu_seconds(d.process.pid), time.process_time()
        barrier.wait()
        t_start = time.perf_counter()
        for s in senders:
            s.join()
        wall = max(s.finished_at for s in senders) - t_start
        cpu_after, client_cpu_after = cpu_seconds(d.process.pid), time.process_time()
        with d.client() as client:
            applies_end = metric_value(parse_metrics(client.get("/metrics").text),
                                       "lamplighter_lamp_applies_total", lamp=LAMP)
            t0 = time.perf_counter()
            listed = client.get("/api/events", params={"limit": LIST_LIMIT})
            list_seconds = time.perf_counter() - t0
            time.sleep(settle)  # let every signal's hold run out and the lamp restore
            samples = parse_metrics(client.get("/metrics").text)
        time.sleep(0.1)
        sse.close()
        sse_views = sse.drain()
    answers = [a for s in senders for a in s.answers]
    errors = [e for s in senders for e in s.errors]
    accepted = {a[2]["id"]: a[2] for a in answers if a[1] == 202 and a[2]}
    statuses = collections.Counter(a[1] for a in answers)
    outcomes = collections.Counter(a["outcome"] for a in accepted.values())
    stored = {row["id"]: row for row in listed.json()} if listed.status_code == 200 else {}
    checkable = sorted(accepted)[-LIST_LIMIT:]
    lost = [i for i in checkable if i not in stored]
    mismatched = [i for i in checkable if i in stored and stored[i]["outcome"] != accepted[i]["outcome"]]
    states = [initial["state"]] + [v["state"] for _, v in sse_views]
    state_changes = sum(1 for a, b in itertools.pairwise(states) if a != b)
    applies_after = metric_value(samples, "lamplighter_lamp_applies_total", lamp=LAMP)
    result = {
        "machine": info,
        "params": {"events": events, "clients": CLIENTS, "senders": list(SENDERS), "levels": list(LEVELS),
                   "guards": {"per_sender": describe(GuardsConfig().rate_limit.per_sender),
                              "per_source": describe(GuardsConfig().rate_limit.per_source),
                              "dedup_window_s": GuardsConfig().dedup_window},
                   "settle_s": settle},
        "wall_s": round(wall, 3),
        "accepted": len(accepted),
        "accepted_per_s": round(len(accepted) / wall, 1),
        "http_statuses": dict(statuses),
        "transport_errors": errors[:20],
        "transport_error_count": len(errors),
        "outcomes": dict(outcomes),
        "post_round_trip_ms": summary_ms([a[0] for a in answers]),
        "checked": len(checkable),
        "lost": len(lost),
        "lost_ids": lost[:50],
        "outcome_mismatches": len(mismatched),
        "list_events_ms": round(list_seconds * 1000, 1),
        "list_events_status": listed.status_code,
        "shown_bound_by_rate_limits": None if (b := shown_bound(wall + settle, len(SENDERS), len(LEVELS))) is None
        else round(b, 1),
        "lamp_applies_end_of_storm": applies_end,
        "lamp_applies_after_settle": applies_after,
        "sse_views": len(sse_views),
        "sse_state_changes": state_changes,
        "server_events": {f"{lab.get('level')}/{lab.get('outcome')}": int(v)
                          for lab, v in samples.get("lamplighter_events_total", [])},
        "daemon_cpu_s": None if cpu_before is None or cpu_after is None else round(cpu_after - cpu_before, 2),
        "client_cpu_s": round(client_cpu_after - client_cpu_before, 2),
        "daemon_exit_code": d.exit_code,  # type: ignore[attr-defined]
        "daemon_stop_s": round(d.stop_seconds, 3),  # type: ignore[attr-defined]
        "script_seconds": round(time.perf_counter() - began, 1),
    }
    return result, 1 if lost else 0


def report(r: dict[str, Any]) -> None:
    print(f"accepted {r['accepted']}/{r['params']['events']} in {r['wall_s']:.2f} s = "
          f"{r['accepted_per_s']:.0f} accepted/s "
          f"(HTTP statuses {r['http_statuses']}, transport errors {r['transport_error_count']})")
    print(f"outcomes: {dict(sorted(r['outcomes'].items(), key=lambda kv: -kv[1]))}")
    print(format_summary("POST /api/events round trip under storm", r["post_round_trip_ms"]))
    print(f"LOST {r['lost']} (checked {r['checked']} accepted ids against GET /api/events?limit={LIST_LIMIT}, "
          f"answered {r['list_events_status']} in {r['list_events_ms']} ms; "
          f"outcome mismatches {r['outcome_mismatches']})")
    shown = r["outcomes"].get("shown", 0)
    print(f"lamp applies (desk): {r['lamp_applies_end_of_storm']:.0f} at the end of the storm, "
          f"{r['lamp_applies_after_settle']:.0f} after {r['params']['settle_s']:g} s settle; "
          f"{shown} events shown (each can cost at most one apply to show and one to restore; "
          f"the default rate limits allow at most {r['shown_bound_by_rate_limits']} in the storm + settle time)")
    print(f"SSE: {r['sse_views']} views published, {r['sse_state_changes']} of them changed the lamp state")
    print(f"CPU during the storm: daemon {r['daemon_cpu_s']} s, bench clients {r['client_cpu_s']} s "
          f"(of {r['wall_s'] * 2:.1f} core-seconds available)")
    print(f"daemon stopped with exit code {r['daemon_exit_code']} in {r['daemon_stop_s']} s; "
          f"script took {r['script_seconds']} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5000, help="events to send (default 5000)")
    parser.add_argument("--settle", type=float, default=11.0,
                        help="seconds to wait after the storm for holds to end (default 11; the levels hold 10 s)")
    args = parser.parse_args()
    result, status = run(args.events, args.settle)
    report(result)
    path = write_results("storm", result)
    print(f"results: {path}")
    raise SystemExit(status)


if __name__ == "__main__":
    main()
