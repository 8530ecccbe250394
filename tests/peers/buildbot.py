"""A real Buildbot 4.3 master on loopback, with a LocalWorker and HttpStatusPush to Lamplighter.

Buildbot is big, so it lives in a virtualenv of its own under the repository's .cache/ (made
by `make test`; by hand: see VENV_COMMAND). One builder, `flaky`, runs a shell step that fails
while `fail_flag` exists, so a test can make it fail and then pass:

    with Buildbot(tmp_path / "bb", push_url, token).start() as bb:
        bb.fail_flag.touch(); bb.force("flaky")      # a failing build
        bb.fail_flag.unlink(); bb.force("flaky")     # a passing build
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.daemon import free_port
from tests.peers.process import PeerProcess, http_ok

ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / ".cache" / "peers" / "buildbot-venv"
VENV_COMMAND = (f"python3 -m venv {VENV} && {VENV}/bin/pip install --quiet "
                "'buildbot[bundle]==4.3.0' 'buildbot-worker==4.3.0'")
READY_TIMEOUT = 30.0

MASTER_CFG = """\
from buildbot.plugins import reporters, schedulers, steps, util, worker

c = BuildmasterConfig = {{}}
c["workers"] = [worker.LocalWorker("local1")]
c["protocols"] = {{"null": {{}}}}  # LocalWorker: in-process, no port
c["builders"] = [util.BuilderConfig(
    name="flaky", workernames=["local1"], tags=["release"],
    factory=util.BuildFactory([steps.ShellCommand(name="check", command=["test", "!", "-e", {fail_flag!r}])]))]
c["schedulers"] = [schedulers.ForceScheduler(name="force", builderNames=["flaky"])]
c["services"] = [reporters.HttpStatusPush(serverUrl={push_url!r},
                                          headers={{"Authorization": "Bearer " + {token!r}}})]
c["title"] = "lamplighter test"
c["buildbotURL"] = "http://127.0.0.1:{port}/"
c["www"] = {{"port": "tcp:{port}:interface=127.0.0.1", "plugins": {{}}}}
c["db"] = {{"db_url": "sqlite:///state.sqlite"}}
c["buildbotNetUsageData"] = None
"""


def buildbot_binary() -> Path:
    binary = VENV / "bin" / "buildbot"
    if not binary.exists():
        raise RuntimeError(f"Buildbot is not installed in {VENV}; `make test` installs it, or run:\n  {VENV_COMMAND}")
    return binary


@dataclass
class Buildbot(PeerProcess):
    workdir: Path
    push_url: str
    token: str
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def master_dir(self) -> Path:
        return self.workdir / "master"

    @property
    def fail_flag(self) -> Path:
        return self.workdir / "fail"

    @property
    def log_path(self) -> Path:
        return self.master_dir / "twistd.log"  # Buildbot's own log; its standard output is appended (empty)

    def start(self) -> Buildbot:
        binary = buildbot_binary()
        self.workdir.mkdir(parents=True, exist_ok=True)
        subprocess.run([binary, "create-master", "--quiet", "-r", str(self.master_dir)], check=True,
                       capture_output=True, timeout=60)
        (self.master_dir / "master.cfg").write_text(MASTER_CFG.format(
            fail_flag=str(self.fail_flag), push_url=self.push_url, token=self.token, port=self.port))
        self.spawn([str(binary), "start", "--nodaemon", str(self.master_dir)])
        self.wait_ready(http_ok(f"{self.url}/api/v2/builders"), READY_TIMEOUT)
        return self

    def force(self, builder: str, reason: str = "test") -> None:
        """Start a build through the force scheduler's JSON-RPC endpoint, as the web UI's button does."""
        request: dict[str, Any] = {"jsonrpc": "2.0", "method": "force", "id": 1,
                                   "params": {"builderNames": [builder], "reason": reason, "owner": "tests"}}
        answer = httpx.post(f"{self.url}/api/v2/forceschedulers/force", json=request, timeout=10)
        answer.raise_for_status()
        if "error" in answer.json():
            raise RuntimeError(f"force build refused: {answer.json()['error']}")

    def builds(self) -> list[dict[str, Any]]:
        answer = httpx.get(f"{self.url}/api/v2/builds", params={"order": "buildid"}, timeout=5).json()
        return list(answer["builds"])
