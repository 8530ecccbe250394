"""Footprint: start-up time (process spawn to /healthz 200) and idle resident memory.

Starts `lamplighter run` N times (default 5) with the embedded-default-like
configuration (one `virtual://desk` lamp, default levels and guards) in one state
directory, so the first start creates the journal and the others reopen it, like
restarts. For each start: the time from spawn to the first 200 from /healthz (polled
by tests.daemon.Daemon, about every 20 ms), then VmRSS from /proc/PID/status after 3 s
idle, then the SIGTERM stop time and exit code. For context it also times a bare
interpreter start and the import of the daemon's modules.

    .venv/bin/python bench/footprint.py [--starts 5] [--idle 3]

Writes bench/results/footprint.json. Timings are reported, never asserted.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._stats import daemon, machine, machine_line, proc_status, write_results

CONFIG = "lamps: {desk: virtual://desk}\n"
IMPORTS = "import lamplighter.cli.main, lamplighter.web.server"


def spawn_seconds(code: str, times: int) -> list[float]:
    """Wall time of `python -c CODE`, `times` times."""
    out = []
    for _ in range(times):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        out.append(time.perf_counter() - t0)
    return out


def one_start(workdir: Path, idle: float) -> dict[str, Any]:
    t0 = time.perf_counter()
    with daemon("footprint", CONFIG, workdir) as d:
        ready = time.perf_counter() - t0
        assert d.process is not None
        at_ready = proc_status(d.process.pid)
        time.sleep(idle)
        idle_status = proc_status(d.process.pid)
    return {"ready_s": round(ready, 4), "rss_at_ready_kb": at_ready.get("VmRSS"),
            "rss_idle_kb": idle_status.get("VmRSS"), "hwm_idle_kb": idle_status.get("VmHWM"),
            "rss_anon_kb": idle_status.get("RssAnon"), "rss_file_kb": idle_status.get("RssFile"),
            "threads": idle_status.get("Threads"),
            "stop_s": round(d.stop_seconds, 3), "exit_code": d.exit_code}  # type: ignore[attr-defined]


def run(starts: int, idle: float) -> dict[str, Any]:
    info = machine()
    print(machine_line(info))
    print(f"footprint: {starts} starts of `lamplighter run` (one virtual://desk lamp), RSS after {idle:g} s idle")
    began = time.perf_counter()
    bare = spawn_seconds("pass", starts)
    imports = spawn_seconds(IMPORTS, starts)
    with tempfile.TemporaryDirectory(prefix="lamplighter-bench-footprint-") as tmp:
        runs = [one_start(Path(tmp), idle) for _ in range(starts)]
    ready = [r["ready_s"] for r in runs]
    rss = [r["rss_idle_kb"] for r in runs if r["rss_idle_kb"]]
    return {
        "machine": info,
        "params": {"starts": starts, "idle_s": idle, "config": CONFIG.strip()},
        "startup_s": {"median": round(statistics.median(ready), 4), "max": round(max(ready), 4),
                      "min": round(min(ready), 4), "first": ready[0]},
        "idle_rss_mb": {"median": round(statistics.median(rss) / 1024, 1), "max": round(max(rss) / 1024, 1)},
        "bare_python_s": round(statistics.median(bare), 4),
        "import_modules_s": round(statistics.median(imports), 4),
        "runs": runs,
        "script_seconds": round(time.perf_counter() - began, 1),
    }


def report(r: dict[str, Any]) -> None:
    s, m = r["startup_s"], r["idle_rss_mb"]
    print(f"start-up (spawn -> /healthz 200, ~20 ms poll): median {s['median'] * 1000:.0f} ms, "
          f"max {s['max'] * 1000:.0f} ms, "
          f"min {s['min'] * 1000:.0f} ms, first (new journal) {s['first'] * 1000:.0f} ms")
    print(f"  for context: bare `python -c pass` {r['bare_python_s'] * 1000:.0f} ms, "
          f"`python -c \"{IMPORTS}\"` {r['import_modules_s'] * 1000:.0f} ms (medians)")
    print(f"idle VmRSS after {r['params']['idle_s']:g} s: median {m['median']:.1f} MiB, max {m['max']:.1f} MiB")
    for i, run_ in enumerate(r["runs"], 1):
        print(f"  start {i}: ready {run_['ready_s'] * 1000:.0f} ms, "
              f"RSS at ready {run_['rss_at_ready_kb'] / 1024:.1f} MiB, "
              f"idle {run_['rss_idle_kb'] / 1024:.1f} MiB (anon {run_['rss_anon_kb'] / 1024:.1f}, "
              f"file {run_['rss_file_kb'] / 1024:.1f}), threads {run_['threads']}, "
              f"SIGTERM stop {run_['stop_s'] * 1000:.0f} ms exit {run_['exit_code']}")
    print(f"script took {r['script_seconds']} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", type=int, default=5, help="daemon starts (default 5)")
    parser.add_argument("--idle", type=float, default=3.0, help="seconds idle before reading VmRSS (default 3)")
    args = parser.parse_args()
    result = run(args.starts, args.idle)
    report(result)
    print(f"results: {write_results('footprint', result)}")


if __name__ == "__main__":
    main()
