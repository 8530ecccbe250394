"""Latency: from POST /api/events to the virtual lamp's new colour arriving on its SSE stream.

One real `lamplighter run` with one `virtual://desk` lamp and generous rate limits. Per
iteration: post a 911 with a unique title, wait for the red state on
GET /lamp/desk/events, wait a pacing gap, ack it, wait for the restore, wait a gap. The
gap (default 25 ms) keeps the driver's 20 ms min_interval out of the numbers.

All timestamps are time.perf_counter() in this one process; the SSE stream is read by a
thread with its own httpx client, the posts go over one persistent httpx.Client.

    .venv/bin/python bench/latency.py [--events 1000] [--gap-ms 25] [--warmup 10]

Prints a report and writes bench/results/latency.json. Timings are reported, never asserted.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx

from bench._stats import (
    SseReader,
    daemon,
    format_summary,
    histogram,
    log_tail,
    machine,
    machine_line,
    metric_value,
    parse_metrics,
    summary_ms,
    write_results,
)

LAMP = "desk"
RED = "#ff0000"
CONFIG = f"""\
lamps: {{{LAMP}: virtual://{LAMP}}}
guards:
  rate_limit:
    per_sender: {{every: 1ms, burst: 100000}}
    per_source: {{every: 1ms, burst: 100000}}
"""
WAIT_SECONDS = 5.0


def is_red_for(event_id: int) -> Callable[[dict[str, Any]], bool]:
    def check(view: dict[str, Any]) -> bool:
        state, showing = view.get("state") or {}, view.get("showing") or {}
        return bool(state.get("on")) and state.get("color") == RED and showing.get("event_id") == event_id
    return check


def is_restored_to(initial: dict[str, Any]) -> Callable[[dict[str, Any]], bool]:
    def check(view: dict[str, Any]) -> bool:
        return view.get("showing") is None and view.get("state") == initial
    return check


def run(events: int, gap: float, warmup: int) -> dict[str, Any]:
    info = machine()
    print(machine_line(info))
    print(f"latency: {events} events (+{warmup} warm-up), gap {gap * 1000:.0f} ms, lamp virtual://{LAMP}")
    began = time.perf_counter()
    rows: list[dict[str, Any]] = []
    problems: list[str] = []
    with daemon("latency", CONFIG) as d:
        sse = SseReader(d, LAMP)
        initial = sse.open()["state"]
        print(f"initial lamp state: {initial}")
        restored = is_restored_to(initial)
        with d.client() as client:
            healthz = []
            for _ in range(200):  # the bare HTTP round trip on this machine, for comparison
                t0 = time.perf_counter()
                client.get("/healthz")
                healthz.append(time.perf_counter() - t0)
            run_id = f"{time.time():.0f}"
            for i in range(-warmup, events):
                row = iteration(client, sse, run_id, i, restored, problems)
                if row is None:
                    break
                row["i"] = i
                if i >= 0:
                    rows.append(row)
                time.sleep(gap)
            metrics_text = client.get("/metrics").text
        sse.close()
        time.sleep(0.2)  # let the server notice the disconnect before SIGTERM
        if sse.error:
            problems.append(sse.error)
        if len(problems) > 0 and d.process is not None and d.process.poll() is not None:
            problems.append(f"daemon exited early with {d.process.returncode}: {log_tail(d)}")
    elapsed = time.perf_counter() - began
    samples = parse_metrics(metrics_text)
    hist = histogram(samples, "lamplighter_event_to_apply_seconds")
    return {
        "machine": info,
        "params": {"events": events, "warmup": warmup, "gap_ms": gap * 1000, "lamp": f"virtual://{LAMP}"},
        "event_to_lamp_ms": summary_ms([r["red"] for r in rows if r.get("red") is not None]),
        "ack_to_restore_ms": summary_ms([r["restore"] for r in rows if r.get("restore") is not None]),
        "post_round_trip_ms": summary_ms([r["post_rtt"] for r in rows]),
        "ack_round_trip_ms": summary_ms([r["ack_rtt"] for r in rows if r.get("ack_rtt") is not None]),
        "healthz_round_trip_ms": summary_ms(healthz),
        "sse_before_202": sum(1 for r in rows if r.get("red") is not None and r["red"] < r["post_rtt"]),
        "sse_messages_per_cycle": {"min": min((r["sse_messages"] for r in rows), default=None),
                                   "max": max((r["sse_messages"] for r in rows), default=None)},
        "server_event_to_apply": hist,
        "server_lamp_applies": metric_value(samples, "lamplighter_lamp_applies_total", lamp=LAMP),
        "server_events": {f"{lab.get('level')}/{lab.get('outcome')}": int(v)
                          for lab, v in samples.get("lamplighter_events_total", [])},
        "problems": problems,
        "slowest": sorted(rows, key=lambda r: -(r.get("red") or 0))[:10],
        "daemon_exit_code": d.exit_code,  # type: ignore[attr-defined]
        "daemon_stop_s": round(d.stop_seconds, 3),  # type: ignore[attr-defined]
        "script_seconds": round(elapsed, 1),
        "rows": rows,
    }


def iteration(client: httpx.Client, sse: SseReader, run_id: str, i: int,
              restored: Callable[[dict[str, Any]], bool], problems: list[str]) -> dict[str, Any] | None:
    """One post-red-ack-restore cycle, in seconds relative to each send; None to stop the run."""
    title = f"latency {run_id} #{i}"
    t0 = time.perf_counter()
    response = client.post("/api/events", json={"level": "911", "title": title, "sender": "bench", "key": ""})
    t1 = time.perf_counter()
    row: dict[str, Any] = {"post_rtt": t1 - t0}
    answer = response.json()
    if response.status_code != 202 or answer.get("outcome") != "shown":
        problems.append(f"event #{i}: POST answered {response.status_code} {answer}")
        return None if len(problems) > 20 else row
    event_id = answer["id"]
    red, seen_red = sse.wait_for(is_red_for(event_id), WAIT_SECONDS)
    if red is None:
        problems.append(f"event #{i} (id {event_id}): no red state on SSE within {WAIT_SECONDS} s")
        return None
    row["red"] = red[0] - t0
    time.sleep(max(0.0, 0.025 - (time.perf_counter() - red[0])))  # let the driver's min_interval pass
    a0 = time.perf_counter()
    ack = client.post(f"/api/events/{event_id}/ack", json={"by": "bench"})
    a1 = time.perf_counter()
    row["ack_rtt"] = a1 - a0
    if ack.status_code != 200:
        problems.append(f"event #{i} (id {event_id}): ack answered {ack.status_code} {ack.text}")
        return None
    back, seen_back = sse.wait_for(restored, WAIT_SECONDS)
    if back is None:
        problems.append(f"event #{i} (id {event_id}): no restore on SSE within {WAIT_SECONDS} s")
        return None
    row["restore"] = back[0] - a0
    row["sse_messages"] = seen_red + seen_back
    row["id"] = event_id
    return row


def report(result: dict[str, Any]) -> None:
    print(format_summary("event -> lamp red on SSE", result["event_to_lamp_ms"]))
    print(format_summary("ack -> lamp restored on SSE", result["ack_to_restore_ms"]))
    print(format_summary("POST /api/events round trip (to 202)", result["post_round_trip_ms"]))
    print(format_summary("POST .../ack round trip (to 200)", result["ack_round_trip_ms"]))
    print(format_summary("baseline GET /healthz round trip", result["healthz_round_trip_ms"]))
    n = result["event_to_lamp_ms"].get("count", 0)
    print(f"SSE view arrived before the 202 in {result['sse_before_202']}/{n} iterations; "
          f"SSE messages per post+ack cycle: min {result['sse_messages_per_cycle']['min']}, "
          f"max {result['sse_messages_per_cycle']['max']}")
    h = result["server_event_to_apply"]
    print(f"server lamplighter_event_to_apply_seconds: count {h['count']}, mean {h['mean_ms']} ms, "
          f"p50 in {h['p50_bucket']}, p90 in {h['p90_bucket']}, p99 in {h['p99_bucket']}")
    print("  buckets (le ms: cumulative): " + ", ".join(
        f"{b['le'] if b['le'] == '+Inf' else format(b['le'] * 1000, 'g')}: {b['cumulative']}" for b in h["buckets"]))
    print(f"server lamp applies (desk): {result['server_lamp_applies']:.0f}; events: {result['server_events']}")
    print("slowest event -> red (i, id, red ms, POST ms): " + "; ".join(
        f"#{r['i']} id {r.get('id')} {r['red'] * 1000:.1f} / {r['post_rtt'] * 1000:.1f}"
        for r in result["slowest"][:5]))
    for problem in result["problems"]:
        print(f"PROBLEM: {problem}")
    print(f"daemon stopped with exit code {result['daemon_exit_code']} in {result['daemon_stop_s']} s; "
          f"script took {result['script_seconds']} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1000, help="measured events (default 1000)")
    parser.add_argument("--gap-ms", type=float, default=25.0, help="pause after each lamp change (default 25)")
    parser.add_argument("--warmup", type=int, default=10, help="unmeasured events first (default 10)")
    args = parser.parse_args()
    result = run(args.events, args.gap_ms / 1000, args.warmup)
    report(result)
    path = write_results("latency", result)
    print(f"results: {path}")


if __name__ == "__main__":
    main()
