"""The hub's side of the rooms on virtual time: receipts in time or the fallback, silent agents, and an
agent that comes back after an hour, without a broker (the MQTT wire is tests/test_rooms_e2e.py's)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiomqtt
import pytest

from lamplighter.drivers.virtual import VirtualDriver
from lamplighter.model import Effect, LampState, make_event
from lamplighter.rooms.protocol import Ack, Applied, Health, Kind, RoomSignal, RoomState, encode
from lamplighter.service.agent import Agent
from lamplighter.service.hub import Hub
from tests.conftest import make_config
from tests.virtual_time import LoopClock

pytestmark = pytest.mark.virtual_time

RED = LampState(on=True, color="#ff0000")
HUB = ("hub: {broker: mqtt://127.0.0.1:1, home: test, apply_within: 5s, silent_after: 60s}\n"
       "rooms: {study: {}}\nlamps: {backup: virtual://backup}\n"
       "levels: {911: {lamps: [study], fallback: [backup], hold: 1h}}\n")


@pytest.fixture
async def hub(tmp_path: Path, clock: LoopClock) -> AsyncIterator[Hub]:
    hub = Hub(make_config(tmp_path, HUB), clock)
    await hub.service.start()  # the MQTT link is not started: the test speaks for the agent
    yield hub
    await hub.service.stop()


def backup(hub: Hub) -> LampState:
    driver = hub.service.lamps["backup"].driver
    assert isinstance(driver, VirtualDriver)
    return driver.state


def agent_says(hub: Hub, kind: Kind, payload: bytes) -> None:
    """A message from the study's agent, as the hub's MQTT link hands it over."""
    hub.on_message(aiomqtt.Message(hub.topics.of("study", kind), payload, 1, False, 1, None))


def send_911(hub: Hub) -> int:
    return hub.service.submit(make_event("911", "payments down", received_at=hub.service.clock.now())).id


async def test_a_receipt_in_time_keeps_the_fallback_away(hub: Hub, clock: LoopClock) -> None:
    agent_says(hub, Kind.HEALTH, encode(Health(online=True, at=clock.now())))
    send_911(hub)
    published = hub.rooms.outbox["study"]
    assert [s.color for s in published.signals] == ["#ff0000"]
    await asyncio.sleep(1.0)
    agent_says(hub, Kind.APPLIED, encode(Applied(seq=published.seq, at=clock.now())))
    await asyncio.sleep(30.0)
    assert backup(hub) != RED
    assert hub.service.agent_views()[0]["lag"] == pytest.approx(1.0)


async def test_no_receipt_in_time_uses_the_levels_fallback(hub: Hub, clock: LoopClock) -> None:
    agent_says(hub, Kind.HEALTH, encode(Health(online=True, at=clock.now())))
    event = send_911(hub)
    await asyncio.sleep(4.9)
    assert backup(hub) != RED
    await asyncio.sleep(0.2)
    await asyncio.sleep(0.1)  # the lamp's own task
    assert backup(hub) == RED
    assert hub.service.signals[event].fallbacks == frozenset({"backup"})
    assert "did not confirm state" in hub.rooms.problem("study")


async def test_a_silent_agent_raises_blind_until_it_speaks_again(hub: Hub, clock: LoopClock) -> None:
    agent_says(hub, Kind.HEALTH, encode(Health(online=True, at=clock.now())))
    await asyncio.sleep(59.0)
    assert not [s for s in hub.service.signals.values() if s.level == "blind"]
    await asyncio.sleep(2.0)
    blind = [s for s in hub.service.signals.values() if s.level == "blind"]
    assert [s.key for s in blind] == ["agent:study"]
    assert hub.service.agent_views()[0]["online"] is False
    agent_says(hub, Kind.HEALTH, encode(Health(online=True, at=clock.now())))
    assert not [s for s in hub.service.signals.values() if s.level == "blind"]


async def test_an_agent_back_after_an_hour_shows_the_911_and_not_the_expired_door(tmp_path: Path,
                                                                                    clock: LoopClock) -> None:
    config = make_config(tmp_path / "agent", "hub: {broker: mqtt://127.0.0.1:1, home: test}\n"
                                             "lamps: {desk: virtual://desk}\n")
    agent = Agent(config, "study", clock)
    agent.fleet.start()  # no broker: the state arrives as the retained message would
    try:
        left = clock.now()
        await asyncio.sleep(3600.0)  # an hour offline
        door = RoomSignal(event_id=1, level="door", title="door", color="#00ff00", brightness=100,
                          effect=Effect.SOLID, priority=200, started_at=left, expires_at=left + 10)
        outage = RoomSignal(event_id=2, level="911", title="down", color="#ff0000", brightness=100,
                            effect=Effect.SOLID, priority=300, started_at=left + 5, expires_at=None)
        agent.apply(RoomState(room="study", seq=7, published_at=left + 5, signals=[door, outage]), clock.now())
        await asyncio.sleep(0.01)
        view = agent.lamp_views()[0]
        assert view.state == RED and view.showing is not None and view.showing.event_id == 2
        assert agent.outbox.get_nowait()[1] == encode(Applied(seq=7, at=left + 3600, showing=[2]))
    finally:
        await agent.stop()


async def test_a_hub_that_lost_its_journal_still_publishes_newer_states(tmp_path: Path, clock: LoopClock) -> None:
    before = Hub(make_config(tmp_path / "first", HUB), clock)
    await before.service.start()
    for _ in range(5):
        send_911(before)
    last = before.rooms.outbox["study"].seq
    await before.service.stop()
    await asyncio.sleep(1.0)
    after = Hub(make_config(tmp_path / "wiped", HUB), clock)  # a new journal: nothing remembered
    await after.service.start()
    try:
        assert after.rooms.outbox["study"].seq > last
    finally:
        await after.service.stop()


async def test_a_room_acknowledges_only_what_it_shows(hub: Hub, clock: LoopClock) -> None:
    agent_says(hub, Kind.HEALTH, encode(Health(online=True, at=clock.now())))
    elsewhere = hub.service.submit(make_event("912", "only on the backup lamp", received_at=clock.now(),
                                              lamps=("backup",))).id
    outage = send_911(hub)
    agent_says(hub, Kind.ACKS, encode(Ack(event_id=elsewhere, by="ann", at=clock.now())))
    assert elsewhere in hub.service.signals
    agent_says(hub, Kind.ACKS, encode(Ack(event_id=outage, by="ann", at=clock.now())))
    assert outage not in hub.service.signals
    assert hub.service.signal_end(outage) == (clock.now(), "acknowledged by ann in study")


PRESENCE = ("hub: {broker: mqtt://127.0.0.1:1, home: test}\nrooms: {study: {}, kitchen: {}}\nlamps: {}\n"
            "levels: {912: {hold: 1d}}\n"
            "people: {ann: {rooms: [study, kitchen], levels: [912], presence: {\n"
            "  hass: 'hass://token@ha.local:8123', entity: sensor.ann_phone_area,\n"
            "  rooms: {Study: study, Kitchen: kitchen}, stay: 30s, stale_after: 15m}}}\n")


def rooms_showing(hub: Hub, event_id: int) -> set[str]:
    return {room for room in hub.rooms.names if hub.rooms.shows(room, event_id)}


async def test_what_home_assistant_tells_stays_current_while_connected_and_goes_stale_once_lost(
        tmp_path: Path, clock: LoopClock) -> None:
    hub = Hub(make_config(tmp_path, PRESENCE), clock)
    await hub.service.start()  # no HA: the test tells the hub what its HA connection would
    try:
        hub.told("ann", "Kitchen")
        event = hub.service.submit(make_event("912", "disk filling", received_at=clock.now())).id
        assert rooms_showing(hub, event) == {"kitchen"}
        await asyncio.sleep(3 * 3600.0)  # no change for hours: HA's connection stands, so she is still there
        assert rooms_showing(hub, event) == {"kitchen"}
        hub.told("ann", None)  # the connection is lost: the last room stands for stale_after
        await asyncio.sleep(14 * 60.0)
        assert rooms_showing(hub, event) == {"kitchen"}
        await asyncio.sleep(61.0)
        assert rooms_showing(hub, event) == {"study", "kitchen"}
        hub.told("ann", "Study")  # back: after a stale room, the report counts at once
        assert rooms_showing(hub, event) == {"study"}
        hub.told("ann", "not_home")  # in no known room, once that stood for `stay`
        await asyncio.sleep(29.0)
        assert rooms_showing(hub, event) == {"study"}
        await asyncio.sleep(2.0)
        assert rooms_showing(hub, event) == {"study", "kitchen"}
    finally:
        await hub.service.stop()
