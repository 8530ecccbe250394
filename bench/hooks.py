"""Webhooks: from POST /hooks/NAME to the virtual lamp's new colour on its SSE stream, per source type.

One real `lamplighter run` with one `virtual://desk` lamp, generous rate limits, and one
source of each webhook type: alertmanager (token), grafana (HMAC), buildbot (token) and a
generic webhook (GitHub-style HMAC). The payloads are the captured and documented ones in
tests/data/hooks/, each iteration with a fresh key (fingerprint, builder). Per type and
iteration: post the firing payload, wait for red on GET /lamp/desk/events, wait a gap, post
the matching resolution, wait for the restore, wait a gap (latency.py's pacing, so the
virtual driver's min_interval stays out of the numbers).

Server side, lamplighter_event_to_apply_seconds is read before and after each type, so its
buckets are per type too (event received -> driver apply call; firing and resolving events alike).

    .venv/bin/python bench/hooks.py [--events 300] [--gap-ms 25] [--warmup 10]

Prints a report and writes bench/results/hooks.json. Timings are reported, never asserted.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
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
    parse_metrics,
    summary_ms,
    write_results,
)
from bench.latency import CONFIG as LATENCY_CONFIG  # the lamp and generous rate limits
from bench.latency import LAMP, is_red_for, is_restored_to
from tests.test_hooks_common import hmac_hex, sample

TOKEN = "bench-hook-token"
SECRET = "bench-hook-secret"
CONFIG = LATENCY_CONFIG + f"""\
sources:
  - {{type: alertmanager, token: {TOKEN}}}
  - {{type: grafana, secret: {SECRET}}}
  - {{type: buildbot, token: {TOKEN}, level: "911"}}
  - type: webhook
    secret: {SECRET}
    level: "911"
    title: "{{check}} is down"
    key: "{{check}}"
    status: {{from: "{{state}}", map: {{down: firing, up: resolved}}}}
"""
WAIT_SECONDS = 5.0
HISTOGRAM = "lamplighter_event_to_apply_seconds"

Request = tuple[bytes, dict[str, str]]  # body, headers


@dataclass(frozen=True)
class Hook:
    """One source type: how to write its firing and resolving requests for iteration `key`."""

    name: str
    auth: str  # "token" or "hmac"
    firing: Callable[[str], dict[str, Any]]
    resolved: Callable[[str], dict[str, Any]]

    def request(self, payload: dict[str, Any]) -> Request:
        body = json.dumps(payload).encode()
        if self.auth == "token":
            return body, {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
        signature = hmac_hex(SECRET, body)
        header = ("X-Grafana-Alerting-Signature", signature) if self.name == "grafana" else (
            "X-Hub-Signature-256", "sha256=" + signature)
        return body, {header[0]: header[1], "Content-Type": "application/json"}


def alert(name: str, status: str) -> Callable[[str], dict[str, Any]]:
    """The captured Alertmanager (or documented Grafana) notification with one alert keyed `key`."""
    def payload(key: str) -> dict[str, Any]:
        notification = copy.deepcopy(sample(name))
        first = notification["alerts"][0]
        first.update(status=status, fingerprint=key)
        first["labels"]["severity"] = "critical"
        notification.update(status=status, alerts=[first])
        return notification
    return payload


def build(kind: str) -> Callable[[str], dict[str, Any]]:
    def payload(key: str) -> dict[str, Any]:
        record = copy.deepcopy(sample(f"buildbot-httpstatuspush-{kind}.json"))
        record["builder"]["name"] = key
        return record
    return payload


HOOKS = (
    Hook("alertmanager", "token", alert("alertmanager.json", "firing"), alert("alertmanager.json", "resolved")),
    Hook("grafana", "hmac", alert("grafana.json", "firing"), alert("grafana.json", "resolved")),
    Hook("buildbot", "token", build("failure"), build("success")),
    Hook("webhook", "hmac", lambda key: {"check": key, "state": "down"}, lambda key: {"check": key, "state": "up"}),
)


def run(events: int, gap: float, warmup: int) -> dict[str, Any]:
    info = machine()
    print(machine_line(info))
    print(f"hooks: {events} events per type (+{warmup} warm-up), gap {gap * 1000:.0f} ms, lamp virtual://{LAMP}")
    began = time.perf_counter()
    results: dict[str, Any] = {}
    problems: list[str] = []
    with daemon("hooks", CONFIG) as d:
        sse = SseReader(d, LAMP)
        restored = is_restored_to(sse.open()["state"])
        with httpx.Client(base_url=d.url, timeout=10) as client, d.client() as api:
            run_id = f"{time.time():.0f}"
            for hook in HOOKS:
                before = parse_metrics(api.get("/metrics").text)
                rows = []
                for i in range(-warmup, events):
                    row = iteration(client, sse, hook, f"bench-{run_id}-{hook.name}-{i}", restored, problems)
                    if row is None:
                        break
                    if i >= 0:
                        rows.append(row)
                    time.sleep(gap)
                after = parse_metrics(api.get("/metrics").text)
                results[hook.name] = summarize(rows, before, after)
        sse.close()
        time.sleep(0.2)  # let the server notice the disconnect before SIGTERM
        if sse.error:
            problems.append(sse.error)
        if problems and d.process is not None and d.process.poll() is not None:
            problems.append(f"daemon exited early with {d.process.returncode}: {log_tail(d)}")
    return {
        "machine": info,
        "params": {"events": events, "warmup": warmup, "gap_ms": gap * 1000, "lamp": f"virtual://{LAMP}"},
        "by_type": results,
        "problems": problems,
        "daemon_exit_code": d.exit_code,  # type: ignore[attr-defined]
        "script_seconds": round(time.perf_counter() - began, 1),
    }


def iteration(client: httpx.Client, sse: SseReader, hook: Hook, key: str,
              restored: Callable[[dict[str, Any]], bool], problems: list[str]) -> dict[str, float] | None:
    """Fire, see red, resolve, see the restore; seconds from each send. None to stop this type."""
    body, headers = hook.request(hook.firing(key))
    t0 = time.perf_counter()
    response = client.post(f"/hooks/{hook.name}", content=body, headers=headers)
    row = {"post_rtt": time.perf_counter() - t0}
    answer = response.json()
    receipts = answer.get("events") or [{}]
    if response.status_code != 202 or receipts[0].get("outcome") != "shown":
        problems.append(f"{hook.name} {key}: answered {response.status_code} {answer}")
        return None
    red, _ = sse.wait_for(is_red_for(receipts[0]["id"]), WAIT_SECONDS)
    if red is None:
        problems.append(f"{hook.name} {key}: no red state on SSE within {WAIT_SECONDS} s")
        return None
    row["fire"] = red[0] - t0
    time.sleep(max(0.0, 0.025 - (time.perf_counter() - red[0])))  # let the driver's min_interval pass
    body, headers = hook.request(hook.resolved(key))
    a0 = time.perf_counter()
    resolved = client.post(f"/hooks/{hook.name}", content=body, headers=headers)
    row["resolve_rtt"] = time.perf_counter() - a0
    if resolved.status_code != 202 or resolved.json()["events"][-1]["outcome"] != "resolved":
        problems.append(f"{hook.name} {key}: resolution answered {resolved.status_code} {resolved.text}")
        return None
    back, _ = sse.wait_for(restored, WAIT_SECONDS)
    if back is None:
        problems.append(f"{hook.name} {key}: no restore on SSE within {WAIT_SECONDS} s")
        return None
    row["resolve"] = back[0] - a0
    return row


def summarize(rows: list[dict[str, float]], before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    return {
        "hook_to_lamp_ms": summary_ms([r["fire"] for r in rows]),
        "resolve_to_restore_ms": summary_ms([r["resolve"] for r in rows]),
        "post_round_trip_ms": summary_ms([r["post_rtt"] for r in rows]),
        "server_event_to_apply": histogram(difference(before, after), HISTOGRAM),
    }


def difference(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """The histogram's samples counted between two scrapes, in parse_metrics' shape."""
    def counted(samples: dict[str, Any], name: str) -> dict[str, float]:
        return {labels.get("le", ""): value for labels, value in samples.get(name, [])}
    out: dict[str, Any] = {}
    for suffix in ("_bucket", "_count", "_sum"):
        name = HISTOGRAM + suffix
        old = counted(before, name)
        out[name] = [({"le": le} if le else {}, value - old.get(le, 0.0)) for le, value in counted(after, name).items()]
    return out


def report(result: dict[str, Any]) -> None:
    for name, numbers in result["by_type"].items():
        print(f"-- {name}")
        print("  " + format_summary("POST /hooks -> lamp red on SSE", numbers["hook_to_lamp_ms"]))
        print("  " + format_summary("resolution -> lamp restored on SSE", numbers["resolve_to_restore_ms"]))
        print("  " + format_summary("POST /hooks round trip (to 202)", numbers["post_round_trip_ms"]))
        h = numbers["server_event_to_apply"]
        print(f"  server event received -> apply call: count {h['count']}, mean {h['mean_ms']} ms, "
              f"p50 in {h['p50_bucket']}, p99 in {h['p99_bucket']}")
    for problem in result["problems"]:
        print(f"PROBLEM: {problem}")
    print(f"daemon exit code {result['daemon_exit_code']}; script took {result['script_seconds']} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=300, help="measured events per type (default 300)")
    parser.add_argument("--gap-ms", type=float, default=25.0, help="pause after each lamp change (default 25)")
    parser.add_argument("--warmup", type=int, default=10, help="unmeasured events per type first (default 10)")
    args = parser.parse_args()
    result = run(args.events, args.gap_ms / 1000, args.warmup)
    report(result)
    print(f"results: {write_results('hooks', result)}")


if __name__ == "__main__":
    main()
