"""A real hub and real room agents as separate processes (`lamplighter hub`, `lamplighter agent`), for tests and bench.

    with Mosquitto(tmp / "mqtt").start() as broker:
        hub = HubProcess(tmp / "hub", broker, rooms="{study: {}, kitchen: {}}").start()
        study = AgentProcess(tmp / "study", broker, "study").start()
        hub.send("911", "payments down"); study.wait_for(lambda lamp: lamp["state"]["color"] == "#ff0000")
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.daemon import TOKEN, free_port
from tests.peers.mosquitto import Mosquitto
from tests.peers.process import PeerProcess, http_ok

READY_TIMEOUT = 30.0
HOME = "test"
FAST = "apply_within: 2s, silent_after: 3s, heartbeat: 1s"  # health settles in seconds, not minutes


def hub_settings(broker: Mosquitto, timing: str = FAST, login: str = "") -> str:
    """The `hub:` block; `login` adds keys such as `username: study, password: "${STUDY_PASSWORD}"`."""
    return f'hub: {{broker: "mqtt://{broker.address}", home: {HOME}, {timing}{", " + login if login else ""}}}\n'


@dataclass
class _Lamplighter(PeerProcess, ABC):
    workdir: Path
    broker: Mosquitto
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    timing: str = FAST
    login: str = ""  # broker credentials for the hub: block (see hub_settings)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def config_path(self) -> Path:
        return self.workdir / "lamplighter.yaml"

    @property
    def log_path(self) -> Path:
        return self.workdir / "process.log"

    @abstractmethod
    def command(self) -> list[str]:
        """The lamplighter subcommand and its options: ["hub"], ["agent", "--room", NAME]."""

    @abstractmethod
    def body(self) -> str:
        """The configuration after `server:`, `state_dir:` and `hub:`."""

    def start(self) -> Any:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(f"server: {{listen: 127.0.0.1:{self.port}}}\nstate_dir: {self.workdir / 'state'}\n"
                                    f"{hub_settings(self.broker, self.timing, self.login)}{self.body()}")
        env = {**os.environ, "LAMPLIGHTER_TOKEN": TOKEN, "LAMPLIGHTER_URL": self.url, "PYTHONUNBUFFERED": "1"}
        self.spawn([sys.executable, "-m", "lamplighter", *self.command(), "-c", str(self.config_path)], env=env)
        self.wait_ready(http_ok(f"{self.url}/healthz"), READY_TIMEOUT)
        return self

    def kill(self) -> None:
        """SIGKILL: no goodbye, the broker publishes the will."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def get(self, path: str) -> Any:
        response = httpx.get(self.url + path, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
        response.raise_for_status()
        return response.json()

    def post(self, path: str, body: dict[str, Any]) -> Any:
        response = httpx.post(self.url + path, json=body, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
        response.raise_for_status()
        return response.json()

    def lamp(self, name: str) -> dict[str, Any]:
        lamp: dict[str, Any] = next(v for v in self.get("/api/lamps") if v["name"] == name)
        return lamp

    def wait_for(self, ready: Callable[[dict[str, Any]], bool], lamp: str = "desk", timeout: float = 10.0,
                 seen: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """Poll a lamp until `ready` holds (every view seen goes to `seen`); AssertionError with the last one."""
        deadline = time.monotonic() + timeout
        view = self.lamp(lamp)
        while not ready(view):
            if seen is not None:
                seen.append(view)
            assert time.monotonic() < deadline, f"{lamp} is still {view}\n{self.log_tail()}"
            time.sleep(0.02)
            view = self.lamp(lamp)
        return view


@dataclass
class HubProcess(_Lamplighter):
    rooms: str = "{study: {}, kitchen: {}}"
    extra: str = "lamps: {}\n"

    def command(self) -> list[str]:
        return ["hub"]

    def body(self) -> str:
        unlimited = "guards: {rate_limit: {per_sender: null, per_source: null}}\n"  # tests send in bursts
        return f"rooms: {self.rooms}\n{unlimited}{self.extra}"

    def send(self, level: str, title: str, **fields: Any) -> int:
        answer = self.post("/api/events", {"level": level, "title": title, **fields})
        assert answer["outcome"] == "shown", answer
        return int(answer["id"])

    def agent(self, room: str) -> dict[str, Any]:
        found: dict[str, Any] = next(a for a in self.get("/api/agents") if a["room"] == room)
        return found


@dataclass
class AgentProcess(_Lamplighter):
    room: str = "study"

    def command(self) -> list[str]:
        return ["agent", "--room", self.room]

    def body(self) -> str:
        return "lamps: {desk: virtual://desk}\n"


def color(view: dict[str, Any]) -> str | None:
    """The colour a lamp view shows, None when off or unknown."""
    state = view["state"]
    return state["color"] if state and state["on"] else None
