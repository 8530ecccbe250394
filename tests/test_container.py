"""The Containerfile builds an image that runs Lamplighter as a non-root user and passes its HEALTHCHECK.

No container engine runs here: tests/container.py carries out the Containerfile's steps in a
chroot over a Debian bookworm minbase (what debian:bookworm-slim holds), made once by
scripts/ensure-bookworm-rootfs (`make test` runs it). What this does not test: an engine's own
handling (image layers, `docker run` flags, the compose file's networking and restart policy),
and the arm64 build.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests import container
from tests.daemon import TOKEN

ROOT = Path(__file__).resolve().parents[1]
BASE = ROOT / ".cache" / "peers" / "bookworm-minbase"
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


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> container.Image:
    if not (BASE / ".installed").exists():
        pytest.fail(f"no Debian base in {BASE}: run scripts/ensure-bookworm-rootfs (make test does)")
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


def test_the_image_serves_and_passes_its_healthcheck(image: container.Image, tmp_path: Path) -> None:
    merged = tmp_path / "root"
    merged.mkdir()
    log = tmp_path / "container.log"
    running = image.start(merged, image.cmd, log, env={"LAMPLIGHTER_TOKEN": TOKEN})  # as compose's env_file
    try:
        deadline = time.monotonic() + 60
        while (health := image.enter(running, merged, image.healthcheck)).returncode != 0:
            assert running.poll() is None, log.read_text()
            assert time.monotonic() < deadline, f"{health.stderr}\n{log.read_text()}"
            time.sleep(0.5)
        fetched = image.enter(running, merged, ["python3", "-c", f"TOKEN = {TOKEN!r}\n{FETCH}",
                                                "/lamp/desk", "/dashboard", "/static/main.js", "/static/dashboard.css"])
        assert fetched.returncode == 0, fetched.stderr
        answers = json.loads(fetched.stdout)
        assert {path: answer[0] for path, answer in answers.items()} == dict.fromkeys(answers, 200)
        assert answers["/dashboard"][1].startswith("text/html") and answers["/static/main.js"][2] > 0
        uid = int(next(line.split()[1] for line in Path(f"/proc/{container.namespaced(running.pid)}/status")
                       .read_text().splitlines() if line.startswith("Uid:")))
        assert uid == image.ids("lamplighter")[0]
        assert container.stop(running) == 0, log.read_text()
    finally:
        if running.poll() is None:
            running.kill()
    journal = image.top / "data" / "lamplighter" / "lamplighter.db"  # the state went into the /data volume
    assert journal.is_file() and journal.stat().st_uid == uid
