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
from dataclasses import dataclass, field
from pathlib import Path

from paho.mqtt import publish

from tests.daemon import free_port
from tests.peers.process import PeerProcess

BINARY = "mosquitto"
READY_TIMEOUT = 10.0


@dataclass
class Mosquitto(PeerProcess):
    workdir: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    persistence: bool = False  # keep sessions and retained messages across a restart (in workdir/data/)
    users: dict[str, str] = field(default_factory=dict)  # logins (name: password); none: anonymous clients
    acl: str = ""  # the acl_file's text (`user NAME` / `topic read|write T` / `pattern ... %u ...`)
    host: str = "127.0.0.1"  # the address it listens on (another one inside a test's network namespace)
    nodelay: bool = False  # set_tcp_nodelay: small messages leave at once, not after the previous one's ACK

    @property
    def address(self) -> str:
        """The `broker:` value for a source."""
        return f"{self.host}:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "mosquitto.log"

    def start(self) -> Mosquitto:
        binary = shutil.which(BINARY, path=f"{os.environ.get('PATH', '')}:/usr/sbin")  # sbin: not on a user's PATH
        if binary is None:
            raise RuntimeError(f"{BINARY} is not installed: `make test` installs it (Debian mosquitto)")
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "mosquitto.conf"
        # As root it would drop to user mosquitto, who cannot reach the test's private directory.
        stay = "user root\n" if os.geteuid() == 0 else ""
        nodelay = "set_tcp_nodelay true\n" if self.nodelay else ""
        config.write_text(f"listener {self.port} {self.host}\n{stay}{nodelay}{self._logins()}{self._persistence()}"
                          "log_dest stderr\nlog_type error\nlog_type warning\nlog_type notice\n")
        self.spawn([binary, "-c", str(config)])
        self.wait_ready(lambda: socket.create_connection((self.host, self.port), timeout=0.5).close() is None,
                        READY_TIMEOUT)
        return self

    def _logins(self) -> str:
        """Anonymous clients, or only the `users` with their passwords, each limited by the `acl` (denials logged)."""
        if not self.users:
            return "allow_anonymous true\n"
        passwords, acl = self.workdir / "passwords", self.workdir / "acl"
        passwords.write_text("")
        for name, password in self.users.items():
            subprocess.run(["mosquitto_passwd", "-b", str(passwords), name, password], check=True, timeout=10,
                           capture_output=True)
        acl.write_text(self.acl)
        return f"allow_anonymous false\npassword_file {passwords}\nacl_file {acl}\nlog_type debug\n"

    def _persistence(self) -> str:
        if not self.persistence:
            return "persistence false\n"
        data = self.workdir / "data"
        data.mkdir(exist_ok=True)
        return f"persistence true\npersistence_location {data}/\n"

    def publish(self, topic: str, payload: str | bytes, retain: bool = False) -> None:
        """Publish one message (QoS 1) as a separate client, the way Frigate or a sensor would."""
        publish.single(topic, payload, qos=1, retain=retain, hostname=self.host, port=self.port)
