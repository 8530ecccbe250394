"""Installed as people install it: a wheel built from this tree, put into a clean virtualenv and with
pipx, gives a `lamplighter` that serves the lamp page, the dashboard with its assets, and /healthz.

The wheel is built by pip's PEP 517 front end (`pip wheel --no-deps`, the same backend call as
`python -m build --wheel`, without another dependency) from a copy of the files an sdist holds.
The dependencies come from a wheelhouse under .cache/, built once per requirements.lock from
pip's cache or PyPI, so each install here runs offline and takes seconds.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.daemon import READY_TIMEOUT, TOKEN, Daemon
from tests.wheel import build_wheel

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements.lock"
WHEELHOUSES = ROOT / ".cache" / "wheelhouse"
STATIC = ROOT / "src" / "lamplighter" / "web" / "static"
TOOLS = ("pip",)  # pipx upgrades its shared pip from where --pip-args point, so the wheelhouse holds one too

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]  # the first run fills the wheelhouse (~1 min)


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without PYTHONPATH, so what runs is the installed package, not this tree."""
    env = {name: value for name, value in os.environ.items() if name not in {"PYTHONPATH", "VIRTUAL_ENV"}}
    return {**env, **extra}


def run(command: list[str], env: Mapping[str, str] | None = None, timeout: float = 300) -> str:
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
    assert done.returncode == 0, f"{' '.join(command)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_wheel(tmp_path_factory.mktemp("dist"))


@pytest.fixture(scope="module")
def wheelhouse(wheel: Path) -> Path:
    """Wheels of every runtime dependency at the locked versions, kept under .cache/ per lock file."""
    key = hashlib.sha256(LOCK.read_bytes() + (ROOT / "pyproject.toml").read_bytes() + str(TOOLS).encode())
    key = key.hexdigest()[:16]
    house = WHEELHOUSES / key
    if not house.is_dir():
        WHEELHOUSES.mkdir(parents=True, exist_ok=True)
        filling = Path(tempfile.mkdtemp(dir=WHEELHOUSES, prefix=f"{key}."))
        run([sys.executable, "-m", "pip", "wheel", "--wheel-dir", str(filling), "-c", str(LOCK), str(wheel), *TOOLS],
            env=clean_env())
        (filling / wheel.name).unlink()
        try:
            filling.rename(house)
        except OSError:  # another run filled it first
            shutil.rmtree(filling)
    return house


def offline(wheelhouse: Path) -> list[str]:
    """pip options: the wheelhouse only, the locked versions, no bytecode compiled ahead (Python does it on import)."""
    return ["--no-index", "--find-links", str(wheelhouse), "-c", str(LOCK), "--no-compile"]


@dataclass
class Installed(Daemon):
    """`lamplighter run` from an installed program, not from this tree."""

    program: Path = Path("lamplighter")

    def start(self) -> Installed:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(f"server: {{listen: 127.0.0.1:{self.port}}}\n"
                                    f"state_dir: {self.workdir / 'state'}\nlamps: {{desk: virtual://desk}}\n")
        self.spawn([str(self.program), "run", "-c", str(self.config_path)],
                   env=clean_env(LAMPLIGHTER_TOKEN=TOKEN, PYTHONUNBUFFERED="1"))
        self.wait_ready(lambda: httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200, READY_TIMEOUT)
        return self


def assert_serves_its_pages(program: Path, workdir: Path) -> None:
    """The installed program starts and serves /healthz, the lamp page, the dashboard and every asset."""
    assert program.is_file()
    assert run([str(program), "--version"], env=clean_env()).strip() == "lamplighter, version 0.1.0"
    with Installed(workdir, "", program=program).start() as daemon, daemon.client() as client:
        assert client.get("/healthz").json()["status"] == "ok"
        lamp = client.get("/lamp/desk")
        assert lamp.status_code == 200 and "text/html" in lamp.headers["content-type"]
        assert "EventSource" in lamp.text
        dashboard = client.get("/dashboard")
        assert dashboard.status_code == 200 and "text/html" in dashboard.headers["content-type"]
        linked = set(re.findall(r'(?:href|src)="static/([^"]+)"', dashboard.text))
        assert {"dashboard.css", "main.js"} <= linked
        for asset in sorted(path.name for path in STATIC.iterdir() if path.suffix in {".css", ".js"}):
            answer = client.get(f"/static/{asset}")
            assert answer.status_code == 200, asset
            assert answer.content == (STATIC / asset).read_bytes(), asset
        assert "virtual://desk" in str(client.get("/api/lamps").json())
        assert daemon.stop() == 0


def test_the_wheel_holds_the_pages_the_unit_and_the_license(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"lamplighter/web/lamp.html", "lamplighter/web/static/dashboard.html", "lamplighter/web/static/main.js",
            "lamplighter/cli/starter.yaml", "lamplighter/cli/lamplighter.service",
            "lamplighter-0.1.0.dist-info/licenses/LICENSE"} <= names
    metadata = zipfile.ZipFile(wheel).read("lamplighter-0.1.0.dist-info/METADATA").decode()
    assert "License-Expression: MIT" in metadata
    assert not [line for line in metadata.splitlines() if re.match(r"Requires-Dist: [\w.-]+==", line)]  # ranges


def test_the_wheel_in_a_clean_virtualenv_serves_its_pages(wheel: Path, wheelhouse: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)], env=clean_env())  # this pip installs into it
    pip = [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python")]
    run([*pip, "install", *offline(wheelhouse), str(wheel)], env=clean_env())
    installed = run([*pip, "list", "--format=freeze"], env=clean_env())
    assert "lamplighter==0.1.0" in installed.splitlines()
    assert not {"pytest", "playwright", "opencv-python-headless", "onnxruntime"} & {
        line.split("==")[0].lower() for line in installed.splitlines()}  # the runtime only
    assert_serves_its_pages(venv / "bin" / "lamplighter", tmp_path / "run")
    unit = run([str(venv / "bin" / "lamplighter"), "systemd-unit"], env=clean_env())
    assert f"ExecStart={venv / 'bin' / 'lamplighter'} run --config" in unit


def test_pipx_install_of_the_wheel_serves_its_pages(wheel: Path, wheelhouse: Path, tmp_path: Path) -> None:
    homes = {"PIPX_HOME": str(tmp_path / "pipx"), "PIPX_BIN_DIR": str(tmp_path / "bin"),
             "PIPX_MAN_DIR": str(tmp_path / "man"),
             "PIPX_SHARED_LIBS": str(ROOT / ".cache" / "pipx-shared-libs")}  # pipx's own pip, made once
    env = {**os.environ, **homes}  # pipx itself comes from the test environment; its pips run without PYTHONPATH
    run([sys.executable, "-m", "pipx", "install", "--pip-args", " ".join(offline(wheelhouse)), str(wheel)], env=env)
    assert_serves_its_pages(tmp_path / "bin" / "lamplighter", tmp_path / "run")
