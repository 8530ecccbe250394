"""Start a real `lamplighter run` in a subprocess for end-to-end tests and benchmarks."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.peers.process import PeerProcess, Probe, http_ok

TOKEN = "test-token-0123456789"
READY_TIMEOUT = 20.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Daemon(PeerProcess):
    """A `lamplighter run -c CONFIG` process on a free loopback port."""

    workdir: Path
    config_body: str
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    run_args: tuple[str, ...] = ()  # more options for `lamplighter run`, e.g. ("--log-format", "json")
    server: str = ""  # more `server:` keys, e.g. "max_body_bytes: 4000000"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def config_path(self) -> Path:
        return self.workdir / "lamplighter.yaml"

    @property
    def log_path(self) -> Path:
        return self.workdir / "daemon.log"

    def env(self) -> dict[str, str]:
        return {**os.environ, "LAMPLIGHTER_TOKEN": TOKEN, "LAMPLIGHTER_URL": self.url,
                "LAMPLIGHTER_CONFIG": str(self.config_path), "PYTHONUNBUFFERED": "1"}

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)

    def write_config(self, body: str, server: str = "") -> None:
        """The file with this body (`server`: more `server:` keys, e.g. `body_timeout: 5s`), as a user edits it."""
        self.config_path.write_text(f"server: {{listen: 127.0.0.1:{self.port}{', ' + server if server else ''}}}\n"
                                    f"state_dir: {self.workdir / 'state'}\n{body}")

    def start(self, ready: Probe | None = None) -> Daemon:
        """Write the configuration, spawn the daemon and wait until `ready` (default: /healthz answers 200)."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.write_config(self.config_body, self.server)
        self.spawn([sys.executable, "-m", "lamplighter", "run", "-c", str(self.config_path), *self.run_args],
                   env=self.env())
        self.wait_ready(ready or http_ok(f"{self.url}/healthz"), READY_TIMEOUT)
        return self

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
        """Send `sig` and wait; returns the exit code."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout=timeout)
