"""Issue 12, done when: a real `lamplighter run` keeps answering a 911 within a second while
every attack of the issue runs against it at once, and every source is still alive afterwards.

The attacks, each from its own thread: a mail of 500 nested forwards over SMTP, a bracket bomb
over MQTT (real Mosquitto), nested JSON and an 11,000-alert batch on the Alertmanager hook, a
lone surrogate, out-of-range ids, and 200 connections that never finish their request line.
"""

from __future__ import annotations

import json
import smtplib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.daemon import TOKEN, Daemon, free_port
from tests.mail_signing import RULES
from tests.peers.mosquitto import Mosquitto
from tests.test_hostile_limits import alertmanager_batch
from tests.test_hostile_mail import nested

pytestmark = pytest.mark.slow

AM_TOKEN = "am-token-0123456789"
ANSWER_WITHIN = 1.0  # seconds: the bound for a 911 during the attacks
RULE = {"topic": "home/alerts", "level": "912", "title": "{payload.msg}", "key": "{payload.msg}"}


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    with Mosquitto(tmp_path / "mqtt").start() as started:
        yield started


def config(broker: Mosquitto, smtp_port: int) -> str:
    return (f"lamps: {{desk: virtual://desk}}\n"
            "guards: {rate_limit: {per_sender: null, per_source: null}}\n"
            "sources:\n"
            f"  - {{type: alertmanager, token: {AM_TOKEN}}}\n"
            f"  - {{type: mqtt, name: home, broker: '{broker.address}', topics: [{json.dumps(RULE)}]}}\n"
            f"  - type: smtp\n    name: mail\n    listen: 127.0.0.1:{smtp_port}\n"
            "    recipients: [lamp@lamplighter.test]\n    clients: [127.0.0.0/8]\n    require: [client]\n" + RULES)


def attacks(daemon: Daemon, broker: Mosquitto, smtp_port: int, replies: list[int]) -> list[Callable[[], None]]:
    hook = {"Authorization": f"Bearer {AM_TOKEN}", "Content-Type": "application/json"}

    def nested_mail() -> None:
        with smtplib.SMTP("127.0.0.1", smtp_port, timeout=30) as client:
            try:
                client.sendmail("alerts@monitor.example.com", ["lamp@lamplighter.test"], nested(500))
            except smtplib.SMTPDataError as refused:
                replies.append(refused.smtp_code)

    def bracket_bomb() -> None:
        broker.publish("home/alerts", "[" * 50_000 + "]" * 50_000)

    def hook_bodies() -> None:
        with httpx.Client(base_url=daemon.url, timeout=30) as client:
            client.post("/hooks/alertmanager", content="[" * 100_000 + "]" * 100_000, headers=hook)
            client.post("/hooks/alertmanager", content=alertmanager_batch(11_000), headers=hook)
            client.post("/api/events", content=b'{"level": "912", "title": "cut \\ud83d"}',
                        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
            client.post("/api/events/99999999999999999999999/ack", json={},
                        headers={"Authorization": f"Bearer {TOKEN}"})

    def idle_connections() -> None:
        held = [socket.create_connection(("127.0.0.1", daemon.port)) for _ in range(200)]
        for sock in held:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHo")  # and never more
        time.sleep(3)
        for sock in held:
            sock.close()

    return [nested_mail, bracket_bomb, hook_bodies, idle_connections]


def test_a_911_is_answered_within_a_second_while_every_attack_runs(tmp_path: Path, broker: Mosquitto) -> None:
    smtp_port = free_port()
    daemon = Daemon(tmp_path / "d", config(broker, smtp_port)).start()
    try:
        with daemon.client() as client:
            wait_connected(client, "home")
            replies: list[int] = []
            threads = [threading.Thread(target=attack, daemon=True)
                       for attack in attacks(daemon, broker, smtp_port, replies)]
            for thread in threads:
                thread.start()
            slowest = 0.0
            while any(thread.is_alive() for thread in threads):
                began = time.monotonic()
                answer = client.post("/api/events", json={"level": "911", "title": f"probe {began}"})
                slowest = max(slowest, time.monotonic() - began)
                assert answer.status_code == 202, answer.text
                time.sleep(0.1)
            for thread in threads:
                thread.join(timeout=60)
            print(f"slowest 911 during the attacks: {slowest * 1000:.0f} ms")  # shown with -s
            assert slowest < ANSWER_WITHIN, f"a 911 took {slowest:.2f} s during the attacks"
            assert replies == [554]  # the nested mail, refused at once
            broker.publish("home/alerts", json.dumps({"msg": "still listening"}))  # the MQTT source is alive
            deadline = time.monotonic() + 10
            while "still listening" not in [e["title"] for e in client.get("/api/events", params={"limit": 50}).json()]:
                assert time.monotonic() < deadline, "the MQTT source took nothing after the attacks"
                time.sleep(0.1)
            sources = {s["name"]: s for s in client.get("/api/sources").json()}
            assert sources["home"]["connected"] and sources["home"]["refused"] >= 1
        assert daemon.stop() == 0
        assert "Traceback" not in daemon.log_path.read_text()
    finally:
        daemon.stop()


def wait_connected(client: httpx.Client, source: str) -> None:
    deadline = time.monotonic() + 10
    while not {s["name"]: s for s in client.get("/api/sources").json()}[source]["connected"]:
        assert time.monotonic() < deadline, f"{source} did not connect"
        time.sleep(0.05)
