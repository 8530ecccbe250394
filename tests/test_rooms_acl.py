"""Topic limits per agent: the broker ACL the README recommends lets each room do its job and nothing more.

A real Mosquitto with a login per room and the README's ACL (`pattern read .../rooms/%u/#`,
`pattern write .../rooms/%u/acks|applied|health`), a real hub and two agents as processes.
Everything a room needs works through it (its state, its receipts, its acknowledgement); a
stolen room login can neither read another room's state, nor acknowledge for another room,
nor write a room's desired state: the broker refuses (its log says "Denied"), and the lamps
stay as they were.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.peers.mosquitto import Mosquitto
from tests.rooms import HOME, AgentProcess, HubProcess, color

pytestmark = pytest.mark.timeout(120)

RED = "#ff0000"
BASE = f"lamplighter/{HOME}/rooms"
PASSWORDS = {"hub": "hub-pw-0123456789", "study": "study-pw-0123456789", "kitchen": "kitchen-pw-0123456789"}
ACL = f"""\
user hub
topic read {BASE}/+/acks
topic read {BASE}/+/applied
topic read {BASE}/+/health
topic write {BASE}/+/state

pattern read {BASE}/%u/#
pattern write {BASE}/%u/acks
pattern write {BASE}/%u/applied
pattern write {BASE}/%u/health
"""


def login(name: str) -> str:
    return f'username: {name}, password: "${{{name.upper()}_MQTT_PASSWORD}}"'


@pytest.fixture
def household(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Mosquitto, HubProcess, AgentProcess,
                                                                                 AgentProcess]]:
    for name, password in PASSWORDS.items():
        monkeypatch.setenv(f"{name.upper()}_MQTT_PASSWORD", password)
    with Mosquitto(tmp_path / "mqtt", users=PASSWORDS, acl=ACL).start() as broker:
        hub = HubProcess(tmp_path / "hub", broker, login=login("hub")).start()
        study = AgentProcess(tmp_path / "study", broker, room="study", login=login("study")).start()
        kitchen = AgentProcess(tmp_path / "kitchen", broker, room="kitchen", login=login("kitchen")).start()
        try:
            yield broker, hub, study, kitchen
        finally:
            for process in (kitchen, study, hub):
                process.stop()


def as_room(broker: Mosquitto, room: str) -> mqtt.Client:
    """A client with a room's login (stolen from that room's agent, say)."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"intruder-{room}-{os.getpid()}")
    client.username_pw_set(room, PASSWORDS[room])
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    return client


def denied(broker: Mosquitto, topic: str, timeout: float = 10.0) -> None:
    """Wait until the broker's log says it refused a message to `topic`."""
    deadline = time.monotonic() + timeout
    while f"'{topic}'" not in "\n".join(line for line in broker.log_path.read_text().splitlines() if "Denied" in line):
        assert time.monotonic() < deadline, f"the broker did not refuse {topic}:\n{broker.log_tail()}"
        time.sleep(0.05)


def test_with_a_login_per_room_each_room_works_and_a_stolen_login_can_do_nothing_to_other_rooms(
        household: tuple[Mosquitto, HubProcess, AgentProcess, AgentProcess]) -> None:
    broker, hub, study, kitchen = household
    event = hub.send("911", "payments down")
    for agent in (study, kitchen):
        agent.wait_for(lambda view: color(view) == RED)
    deadline = time.monotonic() + 10
    while not all(a["online"] and a["applied_seq"] == a["published_seq"] for a in hub.get("/api/agents")):
        assert time.monotonic() < deadline, hub.get("/api/agents")  # receipts and health pass the ACL
        time.sleep(0.05)

    intruder = as_room(broker, "study")
    seen: list[str] = []
    intruder.on_message = lambda _c, _u, message: seen.append(message.topic)
    try:
        intruder.subscribe(f"{BASE}/kitchen/state", qos=1)  # another room's retained state
        ack = {"event_id": event, "by": "intruder", "at": time.time()}
        intruder.publish(f"{BASE}/kitchen/acks", json.dumps(ack), qos=1).wait_for_publish(5)
        denied(broker, f"{BASE}/kitchen/acks")
        forged = {"room": "study", "seq": 2**62, "published_at": time.time(), "signals": []}
        intruder.publish(f"{BASE}/study/state", json.dumps(forged), qos=1, retain=True).wait_for_publish(5)
        denied(broker, f"{BASE}/study/state")
        time.sleep(0.5)  # what the broker let through would have arrived by now
    finally:
        intruder.loop_stop()
        intruder.disconnect()
    assert seen == []
    assert all(color(agent.lamp("desk")) == RED for agent in (study, kitchen))

    study.post(f"/api/events/{event}/ack", {"by": "ann"})  # the room's own acknowledgement goes through
    for agent in (study, kitchen):
        agent.wait_for(lambda view: color(view) != RED)
