"""Footprint: start-up time (process spawn to /healthz 200) and idle resident memory.

Starts `lamplighter run` N times (default 5) with the embedded-default-like
configuration (one `virtual://desk` lamp, default levels and guards) in one state
directory, so the first start creates the journal and the others reopen it, like
restarts. For each start: the time from spawn to the first 200 from /healthz (polled
by tests.daemon.Daemon, about every 20 ms), then VmRSS from /proc/PID/status after 3 s
idle, then the SIGTERM stop time and exit code.

The code measured is this checkout's src/lamplighter (not whatever the virtualenv's
editable install points at), copied with its bytecode compiled, as an installed package
has it (pip compiles at install; a checkout writes __pycache__ on its first run). The same
copy without bytecode is started N times too, for the cost of compiling every module at
each start (what PYTHONDONTWRITEBYTECODE=1 in a checkout gives).

The anchor, started alternately with the daemon so that both see the same machine load:
a bare FastAPI app with one /healthz route on uvicorn (uvloop, httptools), polled the same
way; the report gives our median over its median. For context it also times a bare
interpreter start and the import of the daemon's modules.

    .venv/bin/python bench/footprint.py [--starts 5] [--idle 3] [--against GIT_REVISION]

Writes bench/results/footprint.json. Timings are reported, never asserted.
"""

from __future__ import annotations

import argparse
import compileall
import io
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._stats import ROOT, daemon, machine, machine_line, proc_status, write_results
from tests.daemon import READY_TIMEOUT, free_port
from tests.peers.process import PeerProcess, http_ok

CONFIG = "lamps: {desk: virtual://desk}\n"
IMPORTS = "import lamplighter.cli.main, lamplighter.web.server"
ANCHOR_APP = """\
import sys
import uvicorn
from fastapi import FastAPI
app = FastAPI()
@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False,
            loop="uvloop", http="httptools", lifespan="off")
"""


@dataclass
class AnchorApp(PeerProcess):
    """The bare FastAPI + uvicorn app, on a free loopback port."""

    workdir: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.workdir / "anchor.log"

    def ready_seconds(self) -> tuple[float, float]:
        """(wall, CPU) seconds from spawn to the first 200 from /healthz."""
        t0 = time.perf_counter()
        self.spawn([sys.executable, "-c", ANCHOR_APP, str(self.port)])
        try:
            self.wait_ready(http_ok(f"http://127.0.0.1:{self.port}/healthz"), READY_TIMEOUT)
            assert self.process is not None
            return time.perf_counter() - t0, cpu_seconds(self.process.pid)
        finally:
            self.stop()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far (less disturbed by other load than wall time)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def code_copy(into: Path, compiled: bool) -> Path:
    """A copy of this checkout's package to put first on PYTHONPATH: with bytecode, or without."""
    shutil.copytree(ROOT / "src" / "lamplighter", into / "lamplighter",
                    ignore=shutil.ignore_patterns("__pycache__"))
    if compiled and not compileall.compile_dir(into / "lamplighter", quiet=1):
        raise RuntimeError("could not compile the package's bytecode")
    return into


def use_code(path: Path) -> None:
    """Daemons started from now on run the package at `path`, and write no bytecode of their own."""
    os.environ["PYTHONPATH"] = str(path)
    os.environ["PYTHONDONTWRITEBYTECODE"] = "1"


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
        cpu = cpu_seconds(d.process.pid)
        at_ready = proc_status(d.process.pid)
        time.sleep(idle)
        idle_status = proc_status(d.process.pid)
    return {"ready_s": round(ready, 4), "cpu_at_ready_s": cpu, "rss_at_ready_kb": at_ready.get("VmRSS"),
            "rss_idle_kb": idle_status.get("VmRSS"), "hwm_idle_kb": idle_status.get("VmHWM"),
            "rss_anon_kb": idle_status.get("RssAnon"), "rss_file_kb": idle_status.get("RssFile"),
            "threads": idle_status.get("Threads"),
            "stop_s": round(d.stop_seconds, 3), "exit_code": d.exit_code}  # type: ignore[attr-defined]


def ready_only(workdir: Path) -> tuple[float, float]:
    """(wall, CPU) seconds from spawn to /healthz 200 of one start, stopped at once."""
    t0 = time.perf_counter()
    with daemon("footprint-other", CONFIG, workdir) as d:
        assert d.process is not None
        return time.perf_counter() - t0, cpu_seconds(d.process.pid)


def code_at(revision: str, into: Path) -> Path:
    """The package as it was at a git revision of this repository, with bytecode, to put on PYTHONPATH."""
    archive = subprocess.run(["git", "archive", revision, "src/lamplighter"], cwd=ROOT, capture_output=True,
                             check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    if not compileall.compile_dir(into / "src" / "lamplighter", quiet=1):
        raise RuntimeError(f"could not compile the bytecode of {revision}")
    return into / "src"


def spread(seconds: list[float]) -> dict[str, float]:
    return {"median": round(statistics.median(seconds), 4), "max": round(max(seconds), 4),
            "min": round(min(seconds), 4)}


def run(starts: int, idle: float, against: str | None) -> dict[str, Any]:
    info = machine()
    print(machine_line(info))
    print(f"footprint: {starts} starts of `lamplighter run` (one virtual://desk lamp), RSS after {idle:g} s idle; "
          f"each after a start of the anchor (a bare FastAPI app)")
    began, load_before = time.perf_counter(), os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="lamplighter-bench-footprint-") as tmp:
        installed, source = code_copy(Path(tmp, "installed"), True), code_copy(Path(tmp, "source"), False)
        state, source_state = Path(tmp, "state"), Path(tmp, "source-state")
        use_code(installed)
        bare = spawn_seconds("pass", starts)
        imports = spawn_seconds(IMPORTS, starts)
        before = code_at(against, Path(tmp, "before")) if against else None
        anchor, runs, from_source, then = [], [], [], []
        for _ in range(starts):
            anchor.append(AnchorApp(Path(tmp)).ready_seconds())  # (wall, CPU)
            use_code(installed)
            runs.append(one_start(state, idle))
            use_code(source)
            from_source.append(ready_only(source_state))
            if before is not None:
                use_code(before)
                then.append(ready_only(Path(tmp, "before-state")))
    ready = [r["ready_s"] for r in runs]
    cpu = [r["cpu_at_ready_s"] for r in runs]
    anchor_wall, anchor_cpu = [wall for wall, _ in anchor], [used for _, used in anchor]
    rss = [r["rss_idle_kb"] for r in runs if r["rss_idle_kb"]]
    return {
        "machine": info,
        "params": {"starts": starts, "idle_s": idle, "config": CONFIG.strip()},
        "startup_s": {**spread(ready), "first": ready[0]},
        "anchor_s": spread(anchor_wall),
        "startup_over_anchor": round(statistics.median(ready) / statistics.median(anchor_wall), 2),
        "cpu_at_ready_s": {"median": round(statistics.median(cpu), 3),
                           "anchor_median": round(statistics.median(anchor_cpu), 3)},
        "startup_from_source_s": {**spread([wall for wall, _ in from_source]), "first": round(from_source[0][0], 4)},
        "against": {"revision": against, "startup_s": spread([wall for wall, _ in then]),
                    "cpu_median_s": round(statistics.median(used for _, used in then), 3)} if then else None,
        "idle_rss_mb": {"median": round(statistics.median(rss) / 1024, 1), "max": round(max(rss) / 1024, 1)},
        "bare_python_s": round(statistics.median(bare), 4),
        "import_modules_s": round(statistics.median(imports), 4),
        "load_average": {"start": load_before, "end": os.getloadavg()},
        "runs": runs,
        "script_seconds": round(time.perf_counter() - began, 1),
    }


def report(r: dict[str, Any]) -> None:
    s, m, a, src = r["startup_s"], r["idle_rss_mb"], r["anchor_s"], r["startup_from_source_s"]
    print(f"start-up (spawn -> /healthz 200, ~20 ms poll): median {s['median'] * 1000:.0f} ms, "
          f"max {s['max'] * 1000:.0f} ms, "
          f"min {s['min'] * 1000:.0f} ms, first (new journal) {s['first'] * 1000:.0f} ms")
    print(f"  anchor, a bare FastAPI app on uvicorn: median {a['median'] * 1000:.0f} ms "
          f"(min {a['min'] * 1000:.0f}, max {a['max'] * 1000:.0f}); ours / anchor = {r['startup_over_anchor']:.2f}")
    c = r["cpu_at_ready_s"]
    print(f"  CPU time used by then (user + system, median): ours {c['median'] * 1000:.0f} ms, "
          f"the anchor's {c['anchor_median'] * 1000:.0f} ms")
    print(f"  without bytecode (every module compiled at each start): median {src['median'] * 1000:.0f} ms "
          f"(min {src['min'] * 1000:.0f}, max {src['max'] * 1000:.0f})")
    if r["against"]:
        b, t = r["against"], r["against"]["startup_s"]
        print(f"  {b['revision']}, started alternately with these (bytecode too): median {t['median'] * 1000:.0f} ms "
              f"(min {t['min'] * 1000:.0f}, max {t['max'] * 1000:.0f}), CPU by then {b['cpu_median_s'] * 1000:.0f} ms "
              "(median)")
    print(f"  for context: bare `python -c pass` {r['bare_python_s'] * 1000:.0f} ms, "
          f"`python -c \"{IMPORTS}\"` {r['import_modules_s'] * 1000:.0f} ms (medians)")
    print(f"idle VmRSS after {r['params']['idle_s']:g} s: median {m['median']:.1f} MiB, max {m['max']:.1f} MiB")
    for i, run_ in enumerate(r["runs"], 1):
        print(f"  start {i}: ready {run_['ready_s'] * 1000:.0f} ms, "
              f"RSS at ready {run_['rss_at_ready_kb'] / 1024:.1f} MiB, "
              f"idle {run_['rss_idle_kb'] / 1024:.1f} MiB (anon {run_['rss_anon_kb'] / 1024:.1f}, "
              f"file {run_['rss_file_kb'] / 1024:.1f}), threads {run_['threads']}, "
              f"SIGTERM stop {run_['stop_s'] * 1000:.0f} ms exit {run_['exit_code']}")
    print("load average (1, 5, 15 min): at the start " + ", ".join(f"{x:.2f}" for x in r["load_average"]["start"])
          + "; at the end " + ", ".join(f"{x:.2f}" for x in r["load_average"]["end"]))
    print(f"script took {r['script_seconds']} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", type=int, default=5, help="daemon starts (default 5)")
    parser.add_argument("--idle", type=float, default=3.0, help="seconds idle before reading VmRSS (default 3)")
    parser.add_argument("--against", metavar="REV", default=None,
                        help="also start the package of this git revision (with bytecode) alternately: a before/after "
                             "under the same load")
    args = parser.parse_args()
    result = run(args.starts, args.idle, args.against)
    report(result)
    print(f"results: {write_results('footprint', result)}")


if __name__ == "__main__":
    main()
