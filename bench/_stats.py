"""Shared helpers for the bench scripts: machine info, percentiles, /metrics, /proc, SSE reading, daemons.

Importing this module puts the repository root on sys.path, so the scripts can use
`tests.daemon.Daemon` (the same launcher the end-to-end tests use).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from tests.daemon import Daemon  # noqa: E402

# ---- machine ---------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    """CPU model, cores and Python version, for every report."""
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu_model": model,
        "cores": os.cpu_count(),
        "cores_usable": usable,
        "python": platform.python_version(),
        "python_impl": platform.python_implementation(),
        "kernel": platform.release(),
        "git": git_revision(),
    }


def git_revision() -> str:
    """The commit under test, with `+dirty` when src/ has uncommitted changes."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "src"], cwd=ROOT, capture_output=True,
                               text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def machine_line(info: dict[str, Any]) -> str:
    return (f"machine: {info['cpu_model']}, {info['cores']} cores ({info['cores_usable']} usable), "
            f"{info['python_impl']} {info['python']}, Linux {info['kernel']}; lamplighter at {info['git']}")


# ---- statistics ------------------------------------------------------------------------------


def percentile(values: Sequence[float], p: float) -> float:
    """The p-th percentile (0-100) with linear interpolation between closest ranks."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100.0
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summary_ms(seconds: Sequence[float], points: Sequence[float] = (50, 90, 99)) -> dict[str, float | int]:
    """count, min, mean, the given percentiles and max, in milliseconds (rounded to µs)."""
    if not seconds:
        return {"count": 0}
    out: dict[str, float | int] = {"count": len(seconds), "min": min(seconds) * 1000,
                                   "mean": sum(seconds) / len(seconds) * 1000}
    for p in points:
        out[f"p{p:g}"] = percentile(seconds, p) * 1000
    out["max"] = max(seconds) * 1000
    return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in out.items()}


def format_summary(label: str, s: dict[str, float | int]) -> str:
    if not s.get("count"):
        return f"{label}: no samples"
    parts = [f"{k} {s[k]:.2f}" for k in s if k not in ("count", "min", "mean")]
    return f"{label} (ms, n={s['count']}): " + "  ".join(parts) + f"  (min {s['min']:.2f}, mean {s['mean']:.2f})"


# ---- /metrics --------------------------------------------------------------------------------


def parse_metrics(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Sample name -> [(labels, value)], e.g. 'lamplighter_lamp_applies_total' -> [({'lamp': 'desk'}, 3.0)]."""
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((dict(sample.labels), float(sample.value)))
    return samples


def metric_value(samples: dict[str, list[tuple[dict[str, str], float]]], name: str, **labels: str) -> float | None:
    for sample_labels, value in samples.get(name, []):
        if all(sample_labels.get(k) == v for k, v in labels.items()):
            return value
    return None


def histogram(samples: dict[str, list[tuple[dict[str, str], float]]], name: str) -> dict[str, Any]:
    """Count, sum and cumulative buckets of a histogram, with the bucket each of p50/p90/p99 falls in."""
    buckets = sorted(((float(lab["le"]), value) for lab, value in samples.get(f"{name}_bucket", [])),
                     key=lambda b: b[0])
    count = metric_value(samples, f"{name}_count") or 0.0
    total = metric_value(samples, f"{name}_sum") or 0.0
    out: dict[str, Any] = {"count": int(count), "sum_s": total,
                           "mean_ms": round(total / count * 1000, 3) if count else None,
                           "buckets": [{"le": "+Inf" if math.isinf(le) else le, "cumulative": int(v)}
                                       for le, v in buckets]}
    for p in (50, 90, 99):
        out[f"p{p}_bucket"] = _bucket_of(buckets, count, p)
    return out


def _bucket_of(buckets: list[tuple[float, float]], count: float, p: float) -> str | None:
    if not count:
        return None
    target = count * p / 100.0
    previous = 0.0
    for le, cumulative in buckets:
        if cumulative >= target:
            upper = "+Inf" if math.isinf(le) else f"{le * 1000:g} ms"
            return f"({previous * 1000:g} ms, {upper}]"
        previous = le
    return None


# ---- results and daemons ---------------------------------------------------------------------


def write_results(name: str, data: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    return path


@contextlib.contextmanager
def daemon(name: str, config_body: str, workdir: Path | None = None, server: str = "") -> Iterator[Daemon]:
    """A started Daemon (in a temporary directory unless `workdir` is given); always stopped.

    Its log is kept as results/NAME.daemon.log. The exit code and stop time of the
    SIGTERM are put on the daemon as `exit_code` and `stop_seconds` (None until
    stopped); a daemon that ignores SIGTERM is killed.
    """
    with tempfile.TemporaryDirectory(prefix=f"lamplighter-bench-{name}-") as tmp:
        d = Daemon(workdir or Path(tmp), config_body, server=server)
        d.exit_code = None  # type: ignore[attr-defined]
        d.stop_seconds = None  # type: ignore[attr-defined]
        try:
            d.start()
            yield d
        finally:
            stop(d)
            RESULTS.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(OSError):
                shutil.copyfile(d.log_path, RESULTS / f"{name}.daemon.log")


def stop(d: Daemon) -> None:
    if d.process is None or getattr(d, "exit_code", None) is not None:
        return
    started = time.perf_counter()
    try:
        d.exit_code = d.stop(signal.SIGTERM, timeout=10)  # type: ignore[attr-defined]
    except Exception:  # a stuck daemon must not outlive the bench
        d.process.kill()
        d.exit_code = code = d.process.wait()  # type: ignore[attr-defined]
        print(f"WARNING: daemon did not stop on SIGTERM within 10 s; killed (exit {code})")
    d.stop_seconds = time.perf_counter() - started  # type: ignore[attr-defined]


def log_tail(d: Daemon, lines: int = 20) -> list[str]:
    with contextlib.suppress(OSError):
        return d.log_path.read_text(errors="replace").splitlines()[-lines:]
    return []


# ---- processes -------------------------------------------------------------------------------

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time a process has used so far, from /proc/PID/stat."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime (fields 14 and 15)


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS, VmHWM, RssAnon, RssFile (kB) and Threads from /proc/PID/status."""
    wanted = ("VmRSS", "VmHWM", "RssAnon", "RssFile", "RssShmem", "Threads")
    out: dict[str, int] = {}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in wanted:
                out[key] = int(value.split()[0])
    return out


# ---- server-sent events ----------------------------------------------------------------------

Message = tuple[float, dict[str, Any]]


class SseReader(threading.Thread):
    """Reads GET /lamp/NAME/events and queues (perf_counter at arrival, parsed data) per `data:` line."""

    def __init__(self, d: Daemon, lamp: str) -> None:
        super().__init__(name=f"sse {lamp}", daemon=True)
        self.client = d.client()
        self.client.timeout = httpx.Timeout(10.0, read=60.0)
        self.lamp = lamp
        self.messages: queue.Queue[Message] = queue.Queue()
        self.connected = threading.Event()
        self.closing = False
        self.error: str | None = None
        self._response: httpx.Response | None = None

    def run(self) -> None:
        try:
            with self.client.stream("GET", f"/lamp/{self.lamp}/events") as response:
                self._response = response
                if response.status_code != 200:
                    self.error = f"SSE answered {response.status_code}: {response.read()!r}"
                    return
                self.connected.set()
                for line in response.iter_lines():
                    if line.startswith("data:"):
                        self.messages.put((time.perf_counter(), json.loads(line[5:])))
        except Exception as exc:
            if not self.closing:
                self.error = f"SSE stream failed: {exc!r}"
        finally:
            self.connected.set()

    def close(self) -> None:
        """Shut the socket down so the blocked reader returns and the server sees the disconnect."""
        self.closing = True
        if self._response is not None:
            stream = self._response.extensions.get("network_stream")
            sock = stream.get_extra_info("socket") if stream is not None else None
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        self.join(5)
        self.client.close()

    def wait_for(self, wanted: Callable[[dict[str, Any]], bool], timeout: float) -> tuple[Message | None, int]:
        """The first queued message that matches, and how many were read to get it (skipped ones included)."""
        deadline = time.perf_counter() + timeout
        seen = 0
        while True:
            left = deadline - time.perf_counter()
            if left <= 0:
                return None, seen
            try:
                message = self.messages.get(timeout=left)
            except queue.Empty:
                return None, seen
            seen += 1
            if wanted(message[1]):
                return message, seen


    def open(self, timeout: float = 10.0) -> dict[str, Any]:
        """Start reading; return the lamp's current view (the stream's first message)."""
        self.start()
        self.connected.wait(timeout)
        if self.error:
            raise RuntimeError(self.error)
        first, _ = self.wait_for(lambda _view: True, timeout)
        if first is None:
            raise RuntimeError(f"GET /lamp/{self.lamp}/events sent no initial view within {timeout} s")
        return first[1]

    def drain(self) -> list[Message]:
        """Every message queued so far."""
        out: list[Message] = []
        while True:
            try:
                out.append(self.messages.get_nowait())
            except queue.Empty:
                return out
