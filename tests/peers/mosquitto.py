"""A real Mosquitto 2.0 broker on loopback (Debian's `mosquitto`), and a publisher for tests.

    with Mosquitto(tmp_path / "mqtt").start() as broker:
        broker.publish("frigate/available", "online", retain=True)
        broker.stop(); broker.start()        # the same port again: clients reconnect

The config has an explicit loopback listener on a free port, `allow_anonymous true` (2.x
refuses anonymous clients otherwise) and `persistence false`. The log goes to stderr, which
is our file: as root Mosquitto drops to user `mosquitto`, who could not open a log file in
the test's private temporary directory.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from paho.mqtt import publish

from tests.daemon import free_port

BINARY = "mosquitto"
READY_TIMEOUT = 10.0


@dataclass
class Mosquitto:
    workdir: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        """The `broker:` value for a source."""
        return f"127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "mosquitto.log"

    def start(self) -> Mosquitto:
        binary = shutil.which(BINARY, path=f"{os.environ.get('PATH', '')}:/usr/sbin")  # sbin: not on a user's PATH
        if binary is None:
            raise RuntimeError(f"{BINARY} is not installed: `make test` installs it (Debian mosquitto)")
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "mosquitto.conf"
        config.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
                          "log_dest stderr\nlog_type error\nlog_type warning\nlog_type notice\n")
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen([binary, "-c", str(config)], stdout=log, stderr=subprocess.STDOUT)
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"mosquitto exited with {self.process.returncode}:\n{self.log_path.read_text()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.005)
        raise RuntimeError(f"mosquitto did not listen within {READY_TIMEOUT}s:\n{self.log_path.read_text()}")

    def publish(self, topic: str, payload: str | bytes, retain: bool = False) -> None:
        """Publish one message (QoS 1) as a separate client, the way Frigate or a sensor would."""
        publish.single(topic, payload, qos=1, retain=retain, hostname="127.0.0.1", port=self.port)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> Mosquitto:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
