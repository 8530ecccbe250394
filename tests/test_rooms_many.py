"""A hub with many rooms on a real Mosquitto: every room gets its state, and the hub's log stays readable."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from paho.mqtt import subscribe

from tests.peers.mosquitto import Mosquitto
from tests.rooms import HOME, HubProcess

pytestmark = pytest.mark.timeout(60)

ROOMS = 40


def test_a_911_reaches_the_retained_state_of_every_one_of_40_rooms_without_warnings(tmp_path: Path) -> None:
    with Mosquitto(tmp_path / "mqtt").start() as broker:
        rooms = "{" + ", ".join(f"r{i}: {{}}" for i in range(ROOMS)) + "}"
        hub = HubProcess(tmp_path / "hub", broker, rooms=rooms).start()
        try:
            event = hub.send("911", "payments down")
            deadline = time.monotonic() + 10
            while True:
                states = subscribe.simple(f"lamplighter/{HOME}/rooms/+/state", msg_count=ROOMS, retained=True,
                                          hostname="127.0.0.1", port=broker.port)
                showing = {json.loads(m.payload)["room"] for m in states
                           if event in [s["event_id"] for s in json.loads(m.payload)["signals"]]}
                if len(showing) == ROOMS or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            assert showing == {f"r{i}" for i in range(ROOMS)}
            assert "pending publish calls" not in hub.log_path.read_text()  # aiomqtt warned at every publish past 10
        finally:
            hub.stop()
