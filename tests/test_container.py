"""The Containerfile builds an image that runs Lamplighter as a non-root user and passes its HEALTHCHECK;
the Home Assistant app's Dockerfile builds an image that starts Lamplighter from the app's options.

No container engine runs here: tests/container.py carries out the Containerfile's steps in a
chroot over a Debian bookworm minbase (what debian:bookworm-slim holds), made once by
scripts/ensure-bookworm-rootfs (`make test` runs it). What this does not test: an engine's own
handling (image layers, `docker run` flags, the compose file's networking and restart policy),
and the arm64 build.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests import container
from tests.daemon import TOKEN
from tests.wheel import build_wheel

ROOT = Path(__file__).resolve().parents[1]
BASE = ROOT / ".cache" / "peers" / "bookworm-minbase"
ADDON = ROOT / "packaging" / "home-assistant" / "lamplighter"
SITE = "/opt/lamplighter/lib/python3.11/site-packages"
FETCH = """
import json, sys, urllib.request
answers = {}
for path in sys.argv[1:]:
    request = urllib.request.Request("http://127.0.0.1:8911" + path, headers={"Authorization": "Bearer " + TOKEN})
    with urllib.request.urlopen(request, timeout=5) as answer:
        answers[path] = [answer.status, answer.headers["content-type"], len(answer.read())]
print(json.dumps(answers))
"""

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]  # the first build downloads Debian's python3 (~2 min)


@pytest.fixture(autouse=True, scope="module")
def debian_base() -> None:
    if not (BASE / ".installed").exists():
        pytest.fail(f"no Debian base in {BASE}: run scripts/ensure-bookworm-rootfs (make test does)")


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> container.Image:
    return container.build(ROOT / "Containerfile", ROOT, BASE, tmp_path_factory.mktemp("image"))


def test_the_image_holds_the_runtime_only_and_runs_as_a_user(image: container.Image) -> None:
    assert image.cmd == ["lamplighter", "run"]
    assert image.user == "lamplighter" and image.ids(image.user)[0] != 0
    assert image.exposed == ["8911"] and image.volumes == ["/data"] and image.workdir == "/data"
    assert image.healthcheck
    assert image.find(f"{SITE}/lamplighter/web/static/main.js").is_file()
    for test_only in ("pytest", "playwright", "cv2", "onnxruntime"):
        with pytest.raises(FileNotFoundError):
            image.find(f"{SITE}/{test_only}")


def wait_until(image: container.Image, running: subprocess.Popen[bytes], merged: Path, probe: list[str],
               log: Path, timeout: float = 60) -> None:
    """Run `probe` beside the running CMD until it exits 0, as an engine runs a HEALTHCHECK."""
    deadline = time.monotonic() + timeout
    while (answer := image.enter(running, merged, probe)).returncode != 0:
        assert running.poll() is None, log.read_text()
        assert time.monotonic() < deadline, f"{answer.stderr}\n{log.read_text()}"
        time.sleep(0.5)


def fetch(image: container.Image, running: subprocess.Popen[bytes], merged: Path, token: str,
          *paths: str) -> dict[str, list[Any]]:
    """GET each path on 127.0.0.1:8911 from inside: {path: [status, content type, length]}."""
    fetched = image.enter(running, merged, ["python3", "-c", f"TOKEN = {token!r}\n{FETCH}", *paths])
    assert fetched.returncode == 0, fetched.stderr
    answers: dict[str, list[Any]] = json.loads(fetched.stdout)
    assert {path: answer[0] for path, answer in answers.items()} == dict.fromkeys(paths, 200)
    return answers


def uid_of(running: subprocess.Popen[bytes]) -> int:
    status = Path(f"/proc/{container.namespaced(running.pid)}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("Uid:")))


def test_the_image_serves_and_passes_its_healthcheck(image: container.Image, tmp_path: Path) -> None:
    merged = tmp_path / "root"
    merged.mkdir()
    log = tmp_path / "container.log"
    running = image.start(merged, image.cmd, log, env={"LAMPLIGHTER_TOKEN": TOKEN})  # as compose's env_file
    try:
        wait_until(image, running, merged, image.healthcheck, log)
        answers = fetch(image, running, merged, TOKEN, "/lamp/desk", "/dashboard", "/static/main.js",
                        "/static/dashboard.css")
        assert answers["/dashboard"][1].startswith("text/html") and answers["/static/main.js"][2] > 0
        uid = uid_of(running)
        assert uid == image.ids("lamplighter")[0]
        assert container.stop(running) == 0, log.read_text()
    finally:
        if running.poll() is None:
            running.kill()
    journal = image.top / "data" / "lamplighter" / "lamplighter.db"  # the state went into the /data volume
    assert journal.is_file() and journal.stat().st_uid == uid


def test_the_home_assistant_app_builds_and_starts_from_its_options(tmp_path: Path) -> None:
    """Home Assistant's base-debian:bookworm image is Debian bookworm with s6-overlay (PID 1) and bashio;
    the app uses neither (its CMD runs run.py, plain Python), so the same Debian base stands in for it."""
    context = tmp_path / "context"
    shutil.copytree(ADDON, context)
    build_wheel(context)
    shutil.copy2(ROOT / "requirements.lock", context)  # what `make addon` puts there
    image = container.build(context / "Dockerfile", context, BASE, tmp_path / "image",
                            args={"BUILD_FROM": "debian:bookworm-slim"})
    options = {"lamps": [{"name": "desk", "url": "virtual://desk"}, {"name": "log", "url": "console://log"}],
               "levels": [{"name": "deploy", "color": "#0080ff", "priority": 50}], "token": TOKEN,
               "frigate": False, "frigate_cameras": [], "mqtt_topics": []}
    (image.top / "data").mkdir()
    (image.top / "data" / "options.json").write_text(json.dumps(options))  # as the Supervisor writes it
    merged = tmp_path / "root"
    merged.mkdir()
    log = tmp_path / "app.log"
    running = image.start(merged, image.cmd, log, env={"SUPERVISOR_TOKEN": "supervisor-token"})
    try:
        watchdog = ["python3", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8911/healthz')"]
        wait_until(image, running, merged, watchdog, log)  # what config.yaml's watchdog asks
        fetch(image, running, merged, TOKEN, "/dashboard", "/lamp/desk", "/static/main.js", "/api/lamps")
        assert container.stop(running) == 0, log.read_text()
    finally:
        if running.poll() is None:
            running.kill()
    written = (image.top / "data" / "lamplighter.yaml").read_text()
    assert "${LAMPLIGHTER_TOKEN}" in written and TOKEN not in written and "log: console://log" in written
    assert (image.top / "data" / "state" / "lamplighter.db").is_file()
