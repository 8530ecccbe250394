"""End to end: `lamplighter run` as a subprocess, driven by the CLI and the API as a user would."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.daemon import TOKEN, Daemon

pytestmark = pytest.mark.slow


def cli(daemon: Daemon, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lamplighter", *args], env=daemon.env(), capture_output=True,
                          text=True, timeout=30)


def desk(client: httpx.Client) -> dict[str, object]:
    return {lamp["name"]: lamp for lamp in client.get("/api/lamps").json()}["desk"]


def wait_for(check: Callable[[], bool], timeout: float = 5.0) -> float:
    """Poll until check() holds; return the seconds it took."""
    start = time.monotonic()
    while not check():
        assert time.monotonic() - start < timeout, "condition not reached in time"
        time.sleep(0.01)
    return time.monotonic() - start


def test_send_shows_the_level_and_the_lamp_returns_after_the_hold(daemon: Callable[..., Daemon]) -> None:
    d = daemon("lamps: {desk: 'virtual://desk?on=true&color=warmwhite&brightness=40'}\nlevels: {911: {hold: 3s}}\n")
    sent = cli(d, "send", "911", "payments down", "--sender", "alice")
    assert sent.returncode == 0, sent.stderr
    assert sent.stdout.strip() == "event 1: shown — On the lamp now"
    with d.client() as client:
        lamp = desk(client)
        assert lamp["state"] == {"on": True, "color": "#ff0000", "brightness": 100, "effect": "blink"}
        showing: dict[str, float] = lamp["showing"]  # type: ignore[assignment]
        assert showing["title"] == "payments down"
        status = cli(d, "status")
        assert "showing event 1 (911: payments down)" in status.stdout
        assert "1  911    shown        payments down" in status.stdout
        wait_for(lambda: desk(client)["showing"] is None, timeout=10)
        held = time.time() - showing["started_at"]  # the daemon's clock: a slow CLI does not count
        assert 3.0 <= held < 6.0  # a 3 s hold, in real time, with a generous window for a busy machine
        assert desk(client)["state"] == {"on": True, "color": "#ffd8a8", "brightness": 40, "effect": "solid"}


def test_ack_and_resolve_from_the_cli(daemon: Callable[..., Daemon]) -> None:
    d = daemon("levels: {911: {hold: until_ack}}\n")
    assert cli(d, "send", "911", "db down").stdout.strip() == "event 1: shown — On the lamp now"
    acked = cli(d, "ack", "1", "--by", "alice")
    assert acked.stdout.strip() == "event 1 acknowledged by alice"
    assert cli(d, "ack", "1").returncode == 1
    cli(d, "send", "911", "api down", "--key", "api")
    resolved = cli(d, "send", "911", "api is back", "--key", "api", "--resolve")
    assert resolved.stdout.strip() == "event 3: resolved (ended signal 2)"
    with d.client() as client:
        assert desk(client)["showing"] is None
    assert cli(d, "snooze", "30m").stdout.startswith("lamps snoozed for 30m, until ")
    assert cli(d, "send", "912", "disk").stdout.startswith("event 4: quiet (snoozed by ")
    assert cli(d, "snooze", "off").stdout.strip() == "snooze ended"
    assert cli(d, "send", "912", "disk again", "--sender", "bob").stdout.strip() == "event 5: shown — On the lamp now"


def test_sigterm_stops_cleanly_even_with_a_lamp_page_open(daemon: Callable[..., Daemon]) -> None:
    d = daemon()
    opened = threading.Event()

    def watch() -> None:
        with d.client() as client, client.stream("GET", "/lamp/desk/events", timeout=None) as stream:
            opened.set()
            with contextlib.suppress(httpx.TransportError):  # the daemon ends the stream as it stops
                for _ in stream.iter_lines():
                    pass

    threading.Thread(target=watch, daemon=True).start()
    assert opened.wait(5)
    start = time.monotonic()
    assert d.stop(signal.SIGTERM) == 0
    assert time.monotonic() - start < 1.5  # the open page does not hold shutdown for uvicorn's 2 s grace
    assert "ERROR" not in d.log_path.read_text()


def test_invalid_config_refuses_to_start_and_names_the_problem(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("lamps:\n  desk: virtual://desk\nlevels:\n  911: {color: rde}\n")
    run = subprocess.run([sys.executable, "-m", "lamplighter", "run", "-c", str(config)], capture_output=True,
                         text=True, timeout=30)
    assert run.returncode == 2
    assert f"{config}:4 levels.911.color: unknown colour 'rde'" in run.stderr


def test_embedded_default_generates_a_token_once_and_prints_the_lamp_link(tmp_path: Path) -> None:
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "state"), "PYTHONUNBUFFERED": "1"}
    for name in ("LAMPLIGHTER_CONFIG", "LAMPLIGHTER_TOKEN", "LAMPLIGHTER_URL"):
        env.pop(name, None)
    outputs = []
    for _ in range(2):
        process = subprocess.Popen([sys.executable, "-m", "lamplighter", "run"], cwd=tmp_path, env=env,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            wait_for(lambda p=process: _answers("http://127.0.0.1:8911/healthz") or p.poll() is not None, 20)
            assert process.poll() is None, "the embedded default did not start (is port 8911 taken?)"
            token = (tmp_path / "state" / "lamplighter" / "token").read_text().strip()
            with httpx.Client(base_url="http://127.0.0.1:8911") as client:
                page = client.get(f"/lamp/desk?token={token}", follow_redirects=True)
                assert page.status_code == 200 and "EventSource" in page.text
        finally:
            process.send_signal(signal.SIGINT)
            outputs.append(process.communicate(timeout=10)[0])
        assert process.returncode == 0
    first, second = outputs
    assert "config: embedded default (no file)" in first
    assert f"http://127.0.0.1:8911/lamp/desk?token={token}" in first
    assert f"http://127.0.0.1:8911/dashboard?token={token}" in first
    assert token not in second and "token from state directory" in second
    assert TOKEN not in first


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=0.5).status_code == 200
    except httpx.TransportError:
        return False


def test_lamp_test_shows_the_level_on_one_lamp_then_puts_it_back_and_stores_nothing(
        daemon: Callable[..., Daemon]) -> None:
    d = daemon("lamps: {desk: 'virtual://desk?on=true&color=warmwhite&brightness=40', hall: 'virtual://hall'}\n")
    tested = cli(d, "test", "desk", "912", "--for", "1s")
    assert tested.returncode == 0, tested.stderr
    shows, back = tested.stdout.strip().splitlines()
    assert shows.startswith("desk shows 912: on #ffd000 100% pulse (") and shows.endswith(" ms)")
    assert back == "desk is back: on #ffd8a8 40% solid"
    with d.client() as client:
        assert client.get("/api/events").json() == []  # a test is not an event
        lamps = {lamp["name"]: lamp for lamp in client.get("/api/lamps").json()}
        assert lamps["hall"]["state"]["on"] is False  # the other lamp never saw it
    unknown = cli(d, "test", "desk", "913")
    assert unknown.returncode == 1 and "unknown level '913' (known: 911, door, 912, blind)" in unknown.stderr
    assert "no lamp or siren named 'porch'" in cli(d, "test", "porch").stderr


def test_a_lamp_showing_an_alert_is_not_tested_and_lamps_lists_health(daemon: Callable[..., Daemon]) -> None:
    d = daemon("lamps: {desk: 'virtual://desk', shelf: 'wled://127.0.0.1:9?timeout=0.2'}\n"
               "levels: {911: {lamps: [desk]}}\n")
    cli(d, "send", "911", "payments down")
    busy = cli(d, "test", "desk")
    assert busy.returncode == 1
    assert "desk is showing event 1 (911: payments down); test it when that has ended (HTTP 409)" in busy.stderr
    with d.client() as client:
        wait_for(lambda: not {lamp["name"]: lamp for lamp in client.get("/api/lamps").json()}["shelf"]["online"])
    listed = cli(d, "lamps")
    assert listed.returncode == 1  # a lamp has a problem: scripts can tell
    desk_line, shelf_line = listed.stdout.strip().splitlines()
    assert desk_line.startswith("lamp   desk ") and "showing event 1 (911: payments down)" in desk_line
    assert shelf_line.startswith("lamp   shelf ") and "OFFLINE: cannot reach wled://127.0.0.1:9" in shelf_line
