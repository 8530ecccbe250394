"""Network cuts between a room and its hub: a real agent in its own network namespace, behind a router.

The broker (a real Mosquitto) and a real `lamplighter hub` run in one namespace, a real
`lamplighter agent` in another, linked through a third that routes (tests/netns.py). The cuts
are the two a household meets: the room's link drops (its interface goes down), and the way
goes silent (every packet dropped, no reset: a hung router); and a slow line (32 kbit/s each
way with a 1 s queue: a burst must still arrive in order, and not look like silence). Timing is the FAST one of the
rooms tests (silent_after 3 s, heartbeat 1 s); the door lasts 1 s, so it expires during a cut.

Needs root and iproute2 (CI has both): without `ip netns` these tests fail, they do not skip.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from lamplighter.config import HubConfig
from lamplighter.service.hub import broker_address
from tests.netns import CORE_ADDRESS, Network, NsAgent, NsHub, NsMosquitto
from tests.rooms import FAST, color

pytestmark = pytest.mark.timeout(90)

RED, YELLOW, PURPLE = "#ff0000", "#ffd000", "#8000ff"
SHORT_HOLDS = "lamps: {}\nlevels: {911: {hold: 1h}, 912: {hold: 1h}, door: {hold: 1s}}\n"
WITH_FALLBACK = ("lamps: {backup: virtual://backup}\n"
                 "levels: {911: {lamps: [study], fallback: [backup]}, 912: {hold: 1h}}\n")
NOTICE_WITHIN = 15.0  # generous: silent_after is 3 s, the keepalive 2 s (noticed after two), on a busy machine
TRICKLE = "32kbit"  # 4 kB/s each way, up to 1 s queued
SLOW_LINE_TIMING = "apply_within: 10s, silent_after: 4s, heartbeat: 1s"  # heard every 1.3 s at worst here
AT_ONCE = 5.0  # from connected to shown: the retained state comes at once, settling waits 1 s at most
RECONNECT_WITHIN = 30.0  # the backoff doubles while the link is down (1, 2, 4, 8 s ...)


@pytest.fixture
def network() -> Iterator[Network]:
    with Network.create() as created:
        yield created


def wait_until(what: str, holds: Callable[[], bool], timeout: float) -> float:
    """Poll until `holds`; the seconds it took. AssertionError naming `what` when it does not."""
    start = time.monotonic()
    while not holds():
        assert time.monotonic() - start < timeout, f"not within {timeout} s: {what}"
        time.sleep(0.05)
    return time.monotonic() - start


def blind_events(hub: NsHub) -> list[dict[str, Any]]:
    return [e for e in hub.get("/api/timeline")["events"] if e["level"] == "blind"]


def in_step(hub: NsHub, room: str) -> bool:
    """The hub hears the room's agent and the agent has applied the hub's latest state."""
    agent = hub.agent(room)
    return bool(agent["online"]) and agent["applied_seq"] == agent["published_seq"]


def stays(agent: NsAgent, ready: Callable[[dict[str, Any]], bool], seconds: float) -> list[dict[str, Any]]:
    """The views of the desk lamp over `seconds` for which `ready` does not hold (none: it held throughout)."""
    views, deadline = [], time.monotonic() + seconds
    while time.monotonic() < deadline:
        views.append(agent.lamp("desk"))
        time.sleep(0.02)
    return [view for view in views if not ready(view)]


def start_room(tmp_path: Path, network: Network, hub_extra: str,
               timing: str = FAST) -> tuple[NsMosquitto, NsHub, NsAgent]:
    broker = NsMosquitto(tmp_path / "mqtt", host=CORE_ADDRESS, netns=network.core).start()
    hub = NsHub(tmp_path / "hub", broker, rooms="{study: {}}", extra=hub_extra, timing=timing,
                netns=network.core).start()
    study = NsAgent(tmp_path / "study", broker, room="study", timing=timing, netns=network.room).start()
    wait_until("the agent connected through the router", study.connected, NOTICE_WITHIN)
    wait_until("the hub hears the agent", lambda: in_step(hub, "study"), NOTICE_WITHIN)
    return broker, hub, study


@pytest.mark.parametrize(("silent_after", "keepalive"), [(60.0, 30), (3.0, 2), (10.0, 5), (86400.0, 30), (1.0, 2)])
def test_both_ends_look_for_a_dead_connection_about_as_often_as_silent_after_says(silent_after: float,
                                                                                   keepalive: int) -> None:
    """The MQTT keepalive of the hub's and the agents' links: half of silent_after, 2 to 30 s (the default,
    60 s, keeps the 30 s it always was)."""
    hub = HubConfig(broker="mqtt://broker", home="acme", silent_after=silent_after)
    assert broker_address(hub, "lamplighter-agent-acme-study").keepalive == keepalive


def test_a_room_whose_link_dropped_shows_the_911_still_active_at_once_and_never_the_door_that_expired(
        tmp_path: Path, network: Network, capsys: pytest.CaptureFixture[str]) -> None:
    broker, hub, study = start_room(tmp_path, network, SHORT_HOLDS)
    try:
        network.room_link_down()
        cut = time.monotonic()
        hub.send("door", "someone at the door")  # lasts 1 s: expires during the cut
        outage = hub.send("911", "payments down")  # still active when the room is back
        hub_noticed = wait_until("the hub sees the agent offline", lambda: not hub.agent("study")["online"],
                                 NOTICE_WITHIN)
        wait_until("the agent sees its broker gone", lambda: not study.connected(), NOTICE_WITHIN)
        agent_noticed = time.monotonic() - cut
        assert color(study.lamp("desk")) is None  # nothing reached the room during the cut
        blind = blind_events(hub)
        assert blind and blind[0]["title"] == "room study: its agent is silent" and blind[0]["active"]

        network.room_link_up()
        back = time.monotonic()
        seen: list[dict[str, Any]] = []
        wait_until("the agent reconnected (backoff)", lambda: seen.append(study.lamp("desk")) is None and
                   study.connected(), RECONNECT_WITHIN)
        shown = study.wait_for(lambda view: color(view) == RED, timeout=AT_ONCE, seen=seen)  # not at a next change
        shown_after = time.monotonic() - back
        assert shown["showing"]["event_id"] == outage
        colors = [color(view) for view in seen]  # dark until the 911, then the 911: never the door's green
        assert colors == [None] * colors.count(None) + [RED] * colors.count(RED), colors
        assert stays(study, lambda view: color(view) == RED and view["showing"]["event_id"] == outage, 1.0) == []
        assert [s["event_id"] for s in study.get("/api/room")["state"]["signals"]] == [outage]
        wait_until("the hub sees the agent in step again", lambda: in_step(hub, "study"), NOTICE_WITHIN)
        assert not blind_events(hub)[0]["active"]  # resolved when it spoke again
        with capsys.disabled():
            print(f"\nlink down: the hub noticed after {hub_noticed:.1f} s, the agent after {agent_noticed:.1f} s; "
                  f"link up: the 911 showed after {shown_after:.1f} s")
    finally:
        for process in (study, hub, broker):
            process.stop()


def test_a_silent_cut_makes_the_hub_use_the_fallback_and_the_agent_notice_and_both_converge_after(
        tmp_path: Path, network: Network, capsys: pytest.CaptureFixture[str]) -> None:
    broker, hub, study = start_room(tmp_path, network, WITH_FALLBACK)
    try:
        outage = hub.send("911", "payments down")
        study.wait_for(lambda view: color(view) == RED)
        assert color(hub.lamp("backup")) is None  # the room shows it: no fallback

        network.go_silent()
        cut = time.monotonic()
        hub.wait_for(lambda view: color(view) == RED, lamp="backup", timeout=NOTICE_WITHIN)  # the level's fallback
        hub_noticed = time.monotonic() - cut
        agent = hub.agent("study")
        assert not agent["online"], agent
        assert agent["problem"].startswith(("its agent is offline", "its agent has not been heard from")), agent
        blind = blind_events(hub)
        assert blind and blind[0]["title"] == "room study: its agent is silent" and blind[0]["active"]
        wait_until("the agent sees its broker gone (keepalive)", lambda: not study.connected(), NOTICE_WITHIN)
        agent_noticed = time.monotonic() - cut
        assert color(study.lamp("desk")) == RED  # the room keeps showing what it last knew

        hub.post(f"/api/events/{outage}/ack", {"by": "bob"})  # acknowledged on the hub during the cut ...
        disk = hub.send("912", "disk filling")  # ... and something new meanwhile
        network.heal()
        healed = time.monotonic()
        seen: list[dict[str, Any]] = []
        shown = study.wait_for(lambda view: color(view) == YELLOW, timeout=RECONNECT_WITHIN, seen=seen)
        converged = time.monotonic() - healed
        assert shown["showing"]["event_id"] == disk
        assert {color(view) for view in seen} == {RED}  # the acknowledged 911 until the new state, nothing between
        wait_until("the hub sees the agent in step again", lambda: in_step(hub, "study"), NOTICE_WITHIN)
        assert study.connected()
        assert not blind_events(hub)[0]["active"]
        assert stays(study, lambda view: color(view) == YELLOW, 1.0) == []
        with capsys.disabled():
            print(f"\nsilent cut: hub fallback after {hub_noticed:.1f} s, the agent noticed after "
                  f"{agent_noticed:.1f} s; healed: converged after {converged:.1f} s")
    finally:
        for process in (study, hub, broker):
            process.stop()


def test_the_other_rooms_show_that_a_room_went_silent_and_that_room_comes_back_without_flashing_it(
        tmp_path: Path, network: Network) -> None:
    broker = NsMosquitto(tmp_path / "mqtt", host=CORE_ADDRESS, netns=network.core).start()
    hub = NsHub(tmp_path / "hub", broker, extra=SHORT_HOLDS, netns=network.core).start()  # study and kitchen
    study = NsAgent(tmp_path / "study", broker, room="study", netns=network.room).start()
    kitchen = NsAgent(tmp_path / "kitchen", broker, room="kitchen", netns=network.core).start()  # never cut
    try:
        for room in ("study", "kitchen"):
            wait_until(f"the hub hears the {room}", lambda room=room: in_step(hub, room), NOTICE_WITHIN)
        network.room_link_down()
        shown = kitchen.wait_for(lambda view: color(view) == PURPLE, timeout=NOTICE_WITHIN)
        assert shown["showing"]["title"] == "room study: its agent is silent"
        wait_until("the agent sees its broker gone", lambda: not study.connected(), NOTICE_WITHIN)

        network.room_link_up()
        seen: list[dict[str, Any]] = []
        wait_until("the study is back", lambda: seen.append(study.lamp("desk")) is None and in_step(hub, "study"),
                   RECONNECT_WITHIN)
        seen += [study.lamp("desk") for _ in range(25)]
        assert {color(view) for view in seen} == {None}  # its own silence is over: never shown there
        kitchen.wait_for(lambda view: color(view) is None)  # resolved: gone from the other rooms too
    finally:
        for process in (study, kitchen, hub, broker):
            process.stop()


def test_over_a_slow_line_a_burst_reaches_the_room_in_order_and_it_ends_at_the_hubs_truth(
        tmp_path: Path, network: Network, capsys: pytest.CaptureFixture[str]) -> None:
    broker, hub, study = start_room(tmp_path, network, SHORT_HOLDS, timing=SLOW_LINE_TIMING)
    try:
        network.trickle(TRICKLE)
        disks = [hub.send("912", f"disk {n} filling", body="x" * 200) for n in range(8)]
        outage = hub.send("911", "payments down")
        hub.post(f"/api/events/{outage}/ack", {"by": "bob"})
        posted = time.monotonic()
        applied: list[int] = []
        wait_until("the room has the hub's latest state",
                   lambda: applied.append(study.get("/api/room")["applied_seq"]) is None and in_step(hub, "study"),
                   RECONNECT_WITHIN)
        converged = time.monotonic() - posted
        assert applied == sorted(applied)  # never back to an older state
        shown = study.lamp("desk")
        assert color(shown) == YELLOW and shown["showing"]["event_id"] == disks[-1]  # the newest 912, no 911
        assert not blind_events(hub)  # slow, not silent: its heartbeats do not wait behind its receipts
        with capsys.disabled():
            print(f"\nslow line ({TRICKLE}): 10 changes converged {converged:.1f} s after the last")
    finally:
        for process in (study, hub, broker):
            process.stop()
