"""A real Mosquitto, a hub and room agents as separate processes: what a household would notice.

Holds are short (a door lasts 1 s) so that "an hour offline" fits in seconds: what matters is
that the door expired while the room was away, not for how long.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from paho.mqtt import publish

from tests.daemon import TOKEN
from tests.peers.mosquitto import Mosquitto
from tests.rooms import FAST, HOME, AgentProcess, HubProcess, color

pytestmark = pytest.mark.timeout(120)

RED, YELLOW, GREEN, PURPLE = "#ff0000", "#ffd000", "#00ff00", "#8000ff"
SHORT_HOLDS = "lamps: {}\nlevels: {911: {hold: 1h}, 912: {hold: 1h}, door: {hold: 1s}}\n"


def stop(*processes: Any) -> None:
    for process in processes:
        process.stop()


def ended(hub: HubProcess, event_id: int) -> str | None:
    """How the signal an event started ended on the hub (None: still active)."""
    entry = next(e for e in hub.get("/api/timeline")["events"] if e["id"] == event_id)
    return entry["ended"]["reason"] if entry["ended"] else None


def room_state(broker: Mosquitto, room: str) -> dict[str, Any]:
    """The retained state of a room, read from the broker as a fresh subscriber sees it."""
    from paho.mqtt import subscribe

    message = subscribe.simple(f"lamplighter/{HOME}/rooms/{room}/state", hostname="127.0.0.1", port=broker.port)
    return dict(json.loads(message.payload))


def test_a_911_shows_in_every_room_and_an_ack_in_one_room_clears_them_all(tmp_path: Path) -> None:
    with Mosquitto(tmp_path / "mqtt").start() as broker:
        hub = HubProcess(tmp_path / "hub", broker).start()
        study = AgentProcess(tmp_path / "study", broker, room="study").start()
        kitchen = AgentProcess(tmp_path / "kitchen", broker, room="kitchen").start()
        try:
            event = hub.send("911", "payments down")
            for agent in (study, kitchen):
                agent.wait_for(lambda view: color(view) == RED)
            env = {k: v for k, v in os.environ.items() if k != "LAMPLIGHTER_URL"} | {"LAMPLIGHTER_TOKEN": TOKEN}
            acked = subprocess.run([sys.executable, "-m", "lamplighter", "ack", "-c", str(study.config_path),
                                    str(event), "--by", "ann"], env=env, capture_output=True, text=True, timeout=60)
            assert acked.returncode == 0, acked.stderr
            for agent in (study, kitchen):
                agent.wait_for(lambda view: color(view) is None)
            assert ended(hub, event) == "acknowledged by ann in study"
            agents = {a["room"]: a for a in hub.get("/api/agents")}
            assert agents["study"]["online"] and agents["kitchen"]["online"]
            assert agents["study"]["lamps"] == [{"name": "desk", "online": True, "error": ""}]
            assert agents["study"]["applied_seq"] == agents["study"]["published_seq"]
        finally:
            stop(study, kitchen, hub)


def test_an_agent_back_from_offline_shows_what_is_still_meaningful_and_nothing_that_expired(tmp_path: Path) -> None:
    with Mosquitto(tmp_path / "mqtt").start() as broker:
        hub = HubProcess(tmp_path / "hub", broker, extra=SHORT_HOLDS).start()
        study = AgentProcess(tmp_path / "study", broker, room="study").start()
        try:
            hub.send("912", "disk filling")
            study.wait_for(lambda view: color(view) == YELLOW)
            study.kill()  # no goodbye: the broker publishes its will
            hub.send("door", "someone at the door")  # expires while the room is away
            outage = hub.send("911", "payments down")
            time.sleep(1.5)
            hub.post(f"/api/events/{outage}/ack", {"by": "bob"})  # ... and this one ends while it is away
            late = hub.send("911", "checkout down")  # still active when the room comes back
            study.start()
            seen: list[dict[str, Any]] = []
            shown = study.wait_for(lambda view: color(view) == RED, seen=seen)
            assert shown["showing"]["event_id"] == late
            assert {color(view) for view in seen} <= {YELLOW, None}  # never the expired door or the acked 911
            hub.post(f"/api/events/{late}/ack", {"by": "bob"})
            study.wait_for(lambda view: color(view) == YELLOW)
            time.sleep(0.3)
            assert color(study.lamp("desk")) == YELLOW  # no queued change replayed over it
            agent = hub.agent("study")
            assert agent["online"] and agent["applied_seq"] == agent["published_seq"]
        finally:
            stop(study, hub)


def test_a_silent_agent_raises_blind_on_the_hub_and_its_level_uses_the_fallback(tmp_path: Path) -> None:
    with Mosquitto(tmp_path / "mqtt").start() as broker:
        extra = "lamps: {backup: virtual://backup}\nlevels: {911: {lamps: [study], fallback: [backup]}}\n"
        hub = HubProcess(tmp_path / "hub", broker, rooms="{study: {}}", extra=extra).start()
        study = AgentProcess(tmp_path / "study", broker, room="study").start()
        try:
            study.wait_for(lambda view: view["online"])
            hub.send("911", "payments down")
            study.wait_for(lambda view: color(view) == RED)
            time.sleep(0.5)
            assert color(hub.lamp("backup")) is None  # the room shows it: no fallback
            study.kill()
            hub.wait_for(lambda view: color(view) == RED, lamp="backup")  # the will: the room cannot show it
            agent = hub.agent("study")
            assert not agent["online"] and agent["problem"] == "its agent is offline"
            blind = [e for e in hub.get("/api/timeline")["events"] if e["level"] == "blind"]
            assert blind and blind[0]["title"] == "room study: its agent is silent" and blind[0]["active"]
        finally:
            stop(study, hub)


def test_the_broker_restarted_with_persistence_loses_nothing(tmp_path: Path) -> None:
    with Mosquitto(tmp_path / "mqtt", persistence=True).start() as broker:
        hub = HubProcess(tmp_path / "hub", broker, extra=SHORT_HOLDS).start()
        study = AgentProcess(tmp_path / "study", broker, room="study").start()
        try:
            study.wait_for(lambda view: view["online"])
            study.stop()  # away, with a persistent session at the broker
            hub.send("912", "disk filling")  # queued for the study's session, and retained
            time.sleep(0.5)
            broker.stop()
            broker.start()  # the same port; sessions and retained states from its database
            first = hub.send("911", "payments down")  # the hub publishes once it is back
            study.start()
            shown = study.wait_for(lambda view: color(view) == RED)
            assert shown["showing"]["event_id"] == first
            assert room_state(broker, "study")["signals"][0]["event_id"] == first
        finally:
            stop(study, hub)


def test_qos1_duplicates_and_stale_states_change_nothing(tmp_path: Path) -> None:
    with Mosquitto(tmp_path / "mqtt").start() as broker:
        hub = HubProcess(tmp_path / "hub", broker, extra=SHORT_HOLDS).start()
        study = AgentProcess(tmp_path / "study", broker, room="study").start()
        try:
            hub.send("912", "disk filling")
            study.wait_for(lambda view: color(view) == YELLOW)
            current = room_state(broker, "study")
            red = {**current["signals"][0], "color": RED}
            topic = f"lamplighter/{HOME}/rooms/study"
            # A duplicate delivery of the current state (same sequence number, whatever it says), live
            publish.single(f"{topic}/state", json.dumps({**current, "signals": [red]}), qos=1,
                           hostname="127.0.0.1", port=broker.port)
            time.sleep(0.5)
            assert color(study.lamp("desk")) == YELLOW
            # A stale retained state waiting for a restarted agent: older than what it applied
            applied = study.get("/api/room")["applied_seq"]
            study.stop()
            publish.single(f"{topic}/state", json.dumps({**current, "seq": applied - 1, "signals": [red]}),
                           qos=1, retain=True, hostname="127.0.0.1", port=broker.port)
            study.start()
            seen: list[dict[str, Any]] = []
            deadline = time.monotonic() + 1.0
            while time.monotonic() < deadline:
                seen.append(study.lamp("desk"))
            assert {color(view) for view in seen} == {YELLOW}
            agent = hub.agent("study")
            assert agent["applied_seq"] == agent["published_seq"]
        finally:
            stop(study, hub)


def test_a_signal_follows_its_person_between_two_rooms(tmp_path: Path) -> None:
    with Mosquitto(tmp_path / "mqtt").start() as broker:
        people = ("people: {ann: {rooms: [study, kitchen], levels: [912], "
                  "presence: {topic: presence/ann, stay: 0.3s, stale_after: 1h}}}\n")
        hub = HubProcess(tmp_path / "hub", broker, extra=SHORT_HOLDS + people).start()
        study = AgentProcess(tmp_path / "study", broker, room="study").start()
        kitchen = AgentProcess(tmp_path / "kitchen", broker, room="kitchen").start()
        try:
            hub.send("912", "disk filling")  # where ann is is unknown: every room of hers
            for agent in (study, kitchen):
                agent.wait_for(lambda view: color(view) == YELLOW)
            broker.publish("presence/ann", "study")
            kitchen.wait_for(lambda view: color(view) is None)
            assert color(study.lamp("desk")) == YELLOW
            broker.publish("presence/ann", "kitchen")  # counts after 0.3 s
            kitchen.wait_for(lambda view: color(view) == YELLOW)
            study.wait_for(lambda view: color(view) is None)
            hub.send("911", "payments down")  # a 911 is everyone's
            for agent in (study, kitchen):
                agent.wait_for(lambda view: color(view) == RED)
        finally:
            stop(study, kitchen, hub)


def test_a_button_in_the_room_acknowledges_what_the_room_shows(tmp_path: Path) -> None:
    with Mosquitto(tmp_path / "mqtt").start() as broker:
        hub = HubProcess(tmp_path / "hub", broker, extra=SHORT_HOLDS).start()
        study = AgentProcess(tmp_path / "study", broker, room="study",
                             timing=FAST + ", ack_button: zigbee2mqtt/study_button/action").start()
        try:
            hub.send("912", "disk filling")
            outage = hub.send("911", "payments down")
            study.wait_for(lambda view: color(view) == RED)
            broker.publish("zigbee2mqtt/study_button/action", "single")
            study.wait_for(lambda view: color(view) == YELLOW)  # the 911 it showed ended; the 912 shows again
            assert ended(hub, outage) == "acknowledged by the button in study"
        finally:
            stop(study, hub)
