"""A stderr that nobody reads never stops the daemon, and no log line is lost.

Under systemd the log goes to journald through a pipe; a slow or stuck journald fills it
(64 KiB), and every write to a full pipe blocks. Written on the event loop, one such write
stopped every lamp, source and request. The lines are now written by a thread of their own
(lamplighter.logs), so the daemon goes on and the lines come out once the pipe drains.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from tests.daemon import TOKEN, free_port

EVENTS = 1200  # one log line each (~150 bytes): over twice what the pipe holds


def _wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "the daemon exited during start-up"
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"the daemon did not answer /healthz within {timeout} s")


def test_a_stderr_nobody_reads_never_stops_the_daemon_and_loses_no_line(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    config = tmp_path / "lamplighter.yaml"
    config.write_text(f"server: {{listen: 127.0.0.1:{port}}}\nstate_dir: {tmp_path / 'state'}\n"
                      "lamps: {desk: virtual://desk}\n")
    process = subprocess.Popen([sys.executable, "-m", "lamplighter", "run", "-c", str(config)],
                               env={**os.environ, "LAMPLIGHTER_TOKEN": TOKEN}, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    assert process.stderr is not None
    try:
        _wait_ready(url, process)
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5) as client:
            for n in range(EVENTS):  # nobody reads stderr meanwhile: the pipe is full after about 430
                answer = client.post("/api/events", json={"level": "912", "title": f"blocked log {n}",
                                                          "key": f"blocked-{n}"})
                assert answer.status_code == 202, f"event {n}: {answer.text}"
                if n % 100 == 0:
                    assert client.get("/healthz").status_code == 200
        drained: list[bytes] = []
        reader = threading.Thread(target=lambda: drained.append(process.stderr.read()))  # type: ignore[union-attr]
        reader.start()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        reader.join(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    log = b"".join(drained).decode()
    lost = [n for n in range(EVENTS) if f": blocked log {n}\n" not in log and f": blocked log {n} (" not in log]
    assert lost == [], f"{len(lost)} events have no log line, the first {lost[:5]}"
