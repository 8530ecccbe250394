"""A real Prometheus Alertmanager on loopback (Debian's `prometheus-alertmanager`) posting to a webhook.

    with Alertmanager(tmp_path / "am", webhook_url, token).start() as am:
        am.fire({"alertname": "DiskFull", "severity": "critical"}, summary="Disk / is 97% full")
        am.resolve({"alertname": "DiskFull", "severity": "critical"})

Routing is tuned for tests (group_wait 1 s, group_interval 1 s) and `send_resolved` is on; the
webhook carries `Authorization: Bearer TOKEN` through `http_config.authorization`, as a user
would configure it. The cluster listener is turned off so nothing binds outside loopback.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from tests.daemon import free_port
from tests.peers.process import PeerProcess, http_ok

BINARY = "prometheus-alertmanager"
READY_TIMEOUT = 15.0


@dataclass
class Alertmanager(PeerProcess):
    workdir: Path
    webhook_url: str
    token: str
    repeat_interval: str = "1h"
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "alertmanager.log"

    def config(self) -> str:
        return f"""\
route:
  receiver: lamplighter
  group_by: [alertname, instance]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: {self.repeat_interval}
receivers:
  - name: lamplighter
    webhook_configs:
      - url: {self.webhook_url}
        send_resolved: true
        http_config:
          authorization: {{type: Bearer, credentials: {self.token}}}
"""

    def start(self) -> Alertmanager:
        binary = shutil.which(BINARY)
        if binary is None:
            raise RuntimeError(f"{BINARY} is not installed: `make test` installs it (Debian prometheus-alertmanager)")
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "alertmanager.yml"
        config.write_text(self.config())
        self.spawn([binary, f"--config.file={config}", f"--storage.path={self.workdir / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}", "--cluster.listen-address="])
        self.wait_ready(http_ok(f"{self.url}/-/ready"), READY_TIMEOUT)
        return self

    def post_alert(self, labels: dict[str, str], annotations: dict[str, str], ends_at: datetime | None = None) -> None:
        alert: dict[str, Any] = {"labels": labels, "annotations": annotations}
        if ends_at is not None:
            alert["endsAt"] = ends_at.isoformat()
        httpx.post(f"{self.url}/api/v2/alerts", json=[alert], timeout=5).raise_for_status()

    def fire(self, labels: dict[str, str], **annotations: str) -> None:
        """Post a firing alert (Prometheus would repeat this while the rule holds)."""
        self.post_alert(labels, annotations)

    def resolve(self, labels: dict[str, str], **annotations: str) -> None:
        """Post the alert again with endsAt in the past: Alertmanager resolves it."""
        self.post_alert(labels, annotations, ends_at=datetime.now(UTC) - timedelta(seconds=1))

    def fingerprint(self, labels: dict[str, str]) -> str:
        """The fingerprint Alertmanager gave the alert with exactly these labels."""
        for alert in httpx.get(f"{self.url}/api/v2/alerts", timeout=5).json():
            if alert["labels"] == labels:
                return str(alert["fingerprint"])
        raise LookupError(f"no alert with labels {labels}")
