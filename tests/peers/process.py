"""What every real program the tests start shares: run it logged to a file, wait until it answers, stop it.

A peer is a dataclass with `process` and `log_path` that mixes in PeerProcess:

    self.spawn([binary, "--flag"])                      # output appended to log_path
    self.wait_ready(http_ok(f"{self.url}/-/ready"))     # or any probe; the log is shown if it dies
    ...
    with Peer(...).start() as peer: ...                 # stopped (SIGTERM, then SIGKILL) on leaving
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Self

import httpx

Probe = Callable[[], bool]


def http_ok(url: str) -> Probe:
    """A probe: GET `url` answers 200."""
    return lambda: httpx.get(url, timeout=1).status_code == 200


class PeerProcess(ABC):
    process: subprocess.Popen[bytes] | None

    @property
    @abstractmethod
    def log_path(self) -> Path:
        """Where the program's output (or its own log) is."""

    def spawn(self, command: list[str], env: Mapping[str, str] | None = None) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)

    def wait_ready(self, ready: Probe, timeout: float) -> None:
        """Poll `ready` until it holds; raise with the log's tail if the program exits or stays silent."""
        name = type(self).__name__
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"{name} exited with {self.process.returncode}:\n{self.log_tail()}")
            with contextlib.suppress(httpx.TransportError, OSError):
                if ready():
                    return
            time.sleep(0.02)
        raise RuntimeError(f"{name} did not answer within {timeout}s:\n{self.log_tail()}")

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else "(no log)"

    def stop(self, timeout: float = 15.0) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
