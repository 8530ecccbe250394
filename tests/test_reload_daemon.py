"""Reloading a real daemon's configuration without a restart: SIGHUP, `lamplighter reload`, POST /api/reload.

The lamps are virtual ones and a fake WLED strip (tests/peers/fake_wled.py), whose state shows whether the
daemon touched it; the MQTT source talks to a real Mosquitto, whose log shows every client connection.
"""

from __future__ import annotations

import asyncio
import copy
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from paho.mqtt import publish

from lamplighter.drivers.wled import RESTORED_SEGMENT_KEYS
from tests.daemon import TOKEN, Daemon
from tests.peers.fake_wled import FakeWled
from tests.peers.mosquitto import Mosquitto

pytestmark = pytest.mark.slow

GUARDS = "guards: {rate_limit: {per_sender: null, per_source: null}}\n"
LEVELS = f"levels: {{911: {{hold: until_ack}}}}\n{GUARDS}"
BROKEN = ("levels:\n"
          "  911: {hold: until_ack, colour: red}\n"  # line 5 of the file: a misspelt key
          "guards:\n"
          "  dedup_window: soon\n")  # line 7: not a duration
BROKEN_LINES = ("lamplighter.yaml:5 levels.911.colour: unknown key (check the spelling)",
                "lamplighter.yaml:7 guards.dedup_window: not a duration: 'soon' (use e.g. 10s, 2m, 1h)")
WAIT = 10.0  # a bound for what normally takes milliseconds, on a busy machine
PUBLISHER = "test-publisher-"

StartDaemon = Callable[..., Daemon]


def strip_lamp(strip: FakeWled) -> str:
    return f"strip: 'wled://127.0.0.1:{strip.port}?timeout=0.5'"


def restorable(state: dict[str, Any]) -> dict[str, Any]:
    """What an exact restore brings back: power, brightness and each segment's look."""
    return {"on": state["on"], "bri": state["bri"],
            "seg": [{k: s[k] for k in (*RESTORED_SEGMENT_KEYS, "id")} for s in state["seg"]]}


async def until(check: Callable[[], Any] | Callable[[], Awaitable[Any]], what: str, timeout: float = WAIT) -> Any:
    """Poll `check` (plain or async) until it returns something true; fail naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if asyncio.iscoroutine(found):
            found = await found
        if found:
            return found
        await asyncio.sleep(0.02)
    raise AssertionError(f"not within {timeout} s: {what}")


def api(daemon: Daemon) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=daemon.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)


async def lamp(client: httpx.AsyncClient, name: str) -> dict[str, Any] | None:
    return next((v for v in (await client.get("/api/lamps")).json() if v["name"] == name), None)


def log_count(daemon: Daemon, text: str) -> int:
    return daemon.log_path.read_text(errors="replace").count(text)


async def hang_up(daemon: Daemon, outcome: str) -> None:
    """SIGHUP, then wait for the log line that says how the reload ended (`outcome` is part of it)."""
    seen = log_count(daemon, outcome)
    assert daemon.process is not None
    daemon.process.send_signal(signal.SIGHUP)
    await until(lambda: log_count(daemon, outcome) > seen, f"log line {outcome!r}\n{daemon.log_tail()}")


async def test_sighup_adds_a_lamp_while_a_911_stays_red_and_the_ack_restores_the_strip_exactly(
        daemon: StartDaemon) -> None:
    strip = FakeWled()
    async with strip:
        before = restorable(copy.deepcopy(strip.state))
        started = await asyncio.to_thread(daemon, f"lamps: {{{strip_lamp(strip)}}}\n{LEVELS}")
        async with api(started) as client:
            alarm = (await client.post("/api/events", json={"level": "911", "title": "payments down"})).json()["id"]
            await until(lambda: strip.state["on"] and strip.color() == [255, 0, 0], "the strip turns red")
            commands = len(strip.posts)

            started.write_config(f"lamps: {{{strip_lamp(strip)}, porch: virtual://porch}}\n{LEVELS}")
            await hang_up(started, "configuration reloaded")
            porch = await until(lambda: _showing(client, "porch", alarm), "the new lamp shows the 911")
            assert porch["state"]["color"] == "#ff0000"
            assert strip.color() == [255, 0, 0] and len(strip.posts) == commands  # the strip was left alone
            assert (await lamp(client, "strip"))["showing"]["event_id"] == alarm  # type: ignore[index]

            assert (await client.post(f"/api/events/{alarm}/ack", json={"by": "alice"})).status_code == 200
            await until(lambda: restorable(strip.state) == before, "the strip is back exactly as it was")
            await until(lambda: _showing(client, "porch", None), "the new lamp goes back to off")
    assert log_count(started, "lamps added: porch") == 1


async def _showing(client: httpx.AsyncClient, name: str, event_id: int | None) -> dict[str, Any] | None:
    """The lamp's view once it shows `event_id` (None: once it shows nothing and is off)."""
    view = await lamp(client, name)
    if view is None:
        return None
    if event_id is None:
        return view if view["showing"] is None and view["state"] and not view["state"]["on"] else None
    return view if view["showing"] and view["showing"]["event_id"] == event_id else None


async def test_sighup_with_a_broken_file_changes_nothing_and_logs_every_problem_with_its_line(
        daemon: StartDaemon) -> None:
    started = await asyncio.to_thread(daemon, f"lamps: {{desk: virtual://desk}}\n{LEVELS}")
    async with api(started) as client:
        alarm = (await client.post("/api/events", json={"level": "911", "title": "payments down"})).json()["id"]
        await until(lambda: _showing(client, "desk", alarm), "the desk shows the 911")

        started.write_config(f"lamps: {{desk: virtual://desk, porch: virtual://porch}}\n{BROKEN}")
        await hang_up(started, "the configuration was not reloaded: 2 problem(s)")
        log = started.log_path.read_text()
        for line in BROKEN_LINES:
            assert f"{started.config_path.parent}/{line}" in log
        assert started.process is not None and started.process.poll() is None  # SIGHUP no longer ends it

        assert [v["name"] for v in (await client.get("/api/lamps")).json()] == ["desk"]
        assert (await lamp(client, "desk"))["showing"]["event_id"] == alarm  # type: ignore[index]
        shown = (await client.post("/api/events", json={"level": "912", "title": "disk filling"})).json()
        assert shown["outcome"] == "shown"  # the old configuration still routes


async def test_reload_command_and_api_answer_every_problem_then_apply_the_fixed_file(daemon: StartDaemon) -> None:
    started = await asyncio.to_thread(daemon, f"lamps: {{desk: virtual://desk}}\n{LEVELS}")
    started.write_config(f"lamps: {{desk: virtual://desk, porch: virtual://porch}}\n{BROKEN}")
    refused = await asyncio.to_thread(reload_command, started)
    assert refused.returncode == 2
    problems = [line.removeprefix(f"{started.config_path.parent}/") for line in refused.stderr.splitlines()[1:]]
    assert problems == list(BROKEN_LINES), refused.stderr
    async with api(started) as client:
        answer = await client.post("/api/reload")
        assert answer.status_code == 422
        assert answer.json()["reloaded"] is False
        assert [line.removeprefix(f"{started.config_path.parent}/") for line in answer.json()["lines"]] == \
            list(BROKEN_LINES)
        assert [v["name"] for v in (await client.get("/api/lamps")).json()] == ["desk"]

        started.write_config(f"lamps: {{desk: virtual://desk, porch: virtual://porch}}\n{LEVELS}",
                             server="body_timeout: 5s")
        done = await asyncio.to_thread(reload_command, started)
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines() == ["reloaded: lamps added: porch; needs a restart: server.body_timeout",
                                            "restart the daemon to apply: server.body_timeout"]
        assert [v["name"] for v in (await client.get("/api/lamps")).json()] == ["desk", "porch"]
        again = (await client.post("/api/reload")).json()
        assert (again["reloaded"], again["lamps_added"], again["needs_restart"]) == (True, [], ["server.body_timeout"])


def reload_command(daemon: Daemon) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lamplighter", "reload", "-c", str(daemon.config_path)],
                          env=daemon.env(), capture_output=True, text=True, timeout=20)


async def test_a_removed_lamp_is_put_back_to_its_snapshot_before_the_reload_answers(daemon: StartDaemon) -> None:
    strip = FakeWled()
    async with strip:
        strip.state["on"] = False
        before = restorable(copy.deepcopy(strip.state))
        started = await asyncio.to_thread(daemon, f"lamps: {{desk: virtual://desk, {strip_lamp(strip)}}}\n{LEVELS}")
        async with api(started) as client:
            alarm = (await client.post("/api/events", json={"level": "911", "title": "payments down"})).json()["id"]
            await until(lambda: strip.state["on"] and strip.color() == [255, 0, 0], "the strip turns red")

            started.write_config(f"lamps: {{desk: virtual://desk}}\n{LEVELS}")
            answer = (await client.post("/api/reload")).json()
            assert answer["lamps_removed"] == ["strip"]
            assert restorable(strip.state) == before  # off again, as it was before the 911, when the answer came
            assert [v["name"] for v in (await client.get("/api/lamps")).json()] == ["desk"]
            assert (await lamp(client, "desk"))["showing"]["event_id"] == alarm  # type: ignore[index]


async def test_an_unreachable_removed_lamp_keeps_its_snapshot_and_is_restored_when_it_comes_back(
        daemon: StartDaemon) -> None:
    strip = FakeWled()
    async with strip:
        before = restorable(copy.deepcopy(strip.state))
        with_strip = f"lamps: {{desk: virtual://desk, {strip_lamp(strip)}}}\n{LEVELS}"
        started = await asyncio.to_thread(daemon, with_strip)
        async with api(started) as client:
            alarm = (await client.post("/api/events", json={"level": "911", "title": "payments down"})).json()["id"]
            await until(lambda: strip.state["on"] and strip.color() == [255, 0, 0], "the strip turns red")
            strip.unplug()
            started.write_config(f"lamps: {{desk: virtual://desk}}\n{LEVELS}")
            answer = await client.post("/api/reload")
            assert answer.json()["lamps_removed"] == ["strip"]
            assert log_count(started, "lamp strip left the configuration before it was back to its snapshot") == 1
            assert (await client.post(f"/api/events/{alarm}/ack", json={"by": "alice"})).status_code == 200

            strip.plug()
            assert strip.color() == [255, 0, 0]  # still showing the alert it was left with
            started.write_config(with_strip)
            assert (await client.post("/api/reload")).json()["lamps_added"] == ["strip"]
            await until(lambda: restorable(strip.state) == before, "the strip is back as it was before the 911")


def test_events_posted_during_repeated_reloads_are_all_stored_and_routed(daemon: StartDaemon) -> None:
    started = daemon(f"lamps: {{desk: virtual://desk}}\n{LEVELS}")
    accepted: list[int] = []
    stop = threading.Event()
    senders = [threading.Thread(target=_post_until, args=(started, f"s{i}", accepted, stop)) for i in range(2)]
    for sender in senders:
        sender.start()
    reloads, took = 0, 0.0
    deadline = time.monotonic() + 30
    try:
        with started.client() as client:
            while (reloads < 12 or len(accepted) < 300) and time.monotonic() < deadline:
                lamps = "desk: virtual://desk" + (", porch: virtual://porch" if reloads % 2 == 0 else "")
                colour = ("blue", "purple")[reloads % 2]
                started.write_config(f"lamps: {{{lamps}}}\n"
                                     f"levels: {{911: {{hold: until_ack}}, 912: {{color: {colour}}}}}\n{GUARDS}")
                began = time.monotonic()
                answer = client.post("/api/reload")
                took += time.monotonic() - began
                assert answer.status_code == 200, answer.text
                assert answer.json()["lamps_added" if reloads % 2 == 0 else "lamps_removed"] == ["porch"]
                reloads += 1
    finally:
        stop.set()
        for sender in senders:
            sender.join(10)
    assert reloads >= 12 and len(accepted) >= 300
    with started.client() as client:
        stored = {e["id"]: e for e in client.get("/api/events", params={"limit": 5000}).json()}
    assert set(accepted) <= stored.keys()
    assert {stored[i]["outcome"] for i in accepted} == {"shown"}
    print(f"\n{len(accepted)} events accepted during {reloads} reloads (a reload answered in "
          f"{took / reloads * 1000:.0f} ms on average); all stored and shown")


def _post_until(daemon: Daemon, prefix: str, accepted: list[int], stop: threading.Event) -> None:
    with daemon.client() as client:
        for n in range(1_000_000):
            if stop.is_set():
                return
            response = client.post("/api/events", json={"level": "912", "title": f"{prefix}-{n}"})
            assert response.status_code == 202, response.text
            accepted.append(response.json()["id"])


async def test_a_source_whose_settings_did_not_change_keeps_its_connection(daemon: StartDaemon,
                                                                          tmp_path: Path) -> None:
    with Mosquitto(tmp_path / "mqtt").start() as broker:
        source = ("sources:\n  - {type: mqtt, name: home, broker: '%s', topics: [{topic: 'door/%s', level: door,"
                  " title: '{payload}'}]}\n")
        started = await asyncio.to_thread(daemon, f"lamps: {{desk: virtual://desk}}\n{LEVELS}"
                                          + source % (broker.address, "#"))
        await until(lambda: _daemon_sessions(broker) == (1, 0),
                    f"the source connects to Mosquitto\n{broker.log_tail()}\n{started.log_tail()}")
        async with api(started) as client:
            started.write_config(f"lamps: {{desk: virtual://desk, porch: virtual://porch}}\n{LEVELS}"
                                 + source % (broker.address, "#"))
            answer = (await client.post("/api/reload")).json()
            assert (answer["lamps_added"], answer["sources_restarted"]) == (["porch"], [])
            await asyncio.to_thread(_publish, broker, "door/front", "ding")
            await until(lambda: _event_titled(client, "ding"), "the source still delivers")
            assert _daemon_sessions(broker) == (1, 0)  # the same connection all along

            started.write_config(f"lamps: {{desk: virtual://desk, porch: virtual://porch}}\n{LEVELS}"
                                 + source % (broker.address, "+"))
            answer = (await client.post("/api/reload")).json()
            assert answer["sources_restarted"] == ["home"]
            await until(lambda: _daemon_sessions(broker) == (2, 1), "the source reconnects")
            await until(lambda: _publish_and_see(broker, client, "dong"), "the restarted source delivers")


def _daemon_sessions(broker: Mosquitto) -> tuple[int, int]:
    """How often the daemon connected to the broker, and how often a connection of its ended (from the broker's
    log; the test's own publisher has a client id of its own)."""
    log = broker.log_path.read_text(errors="replace")
    connected = re.findall(r"New client connected from \S+ as (\S+)", log)
    ended = re.findall(r"Client (\S+?)\.? (?:disconnected|closed its connection|has exceeded)", log)
    ours = [client for client in ended if client != "<unknown>"]  # <unknown>: the readiness probe's bare TCP
    return (sum(not client.startswith(PUBLISHER) for client in connected),
            sum(not client.startswith(PUBLISHER) for client in ours))


def _publish(broker: Mosquitto, topic: str, payload: str) -> None:
    publish.single(topic, payload, qos=1, hostname="127.0.0.1", port=broker.port, client_id=f"{PUBLISHER}{payload}")


async def _event_titled(client: httpx.AsyncClient, title: str) -> bool:
    return any(e["title"] == title for e in (await client.get("/api/events")).json())


async def _publish_and_see(broker: Mosquitto, client: httpx.AsyncClient, title: str) -> bool:
    await asyncio.to_thread(_publish, broker, "door/back", title)
    return await _event_titled(client, title)
