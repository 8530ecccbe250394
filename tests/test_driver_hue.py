"""`hue://` against a fake Hue bridge speaking the v2 API over HTTPS on loopback (tests/peers/fake_hue.py)."""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohue import HueBridgeV2

from lamplighter.drivers.registry import build_driver
from lamplighter.model import Effect, LampState, make_event
from lamplighter.service import Service, SignalAction
from tests.peers.fake_hue import APP_KEY, Command, FakeHueBridge
from tests.peers.http_fake import most_in_any_window
from tests.peers.lamps import LAMP, RED, eventually, offline_logs, running_lamp
from tests.peers.tls import self_signed

pytestmark = pytest.mark.real_time  # services and lamps driving real peers on the real clock

RED_XY = {"x": 0.6915, "y": 0.3083}  # red, as the bridge keeps it: clamped into the light's gamut C
SENT_RED = {"x": 0.7006, "y": 0.2993}
BLINK = LampState(on=True, color="#ff0000", effect=Effect.BLINK)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return self_signed(tmp_path_factory.mktemp("hue-tls"), "bridge")


@pytest.fixture
async def bridge(certificate: tuple[Path, Path]) -> AsyncIterator[FakeHueBridge]:
    async with FakeHueBridge(certificate) as fake:
        yield fake


def url(bridge: FakeHueBridge, path: str = "/lights/1", key: str = APP_KEY) -> str:
    return f"hue://{key}@127.0.0.1:{bridge.port}{path}?timeout=0.5"


def look(light: dict[str, Any]) -> dict[str, Any]:
    """What exact restore must bring back."""
    return {k: copy.deepcopy(light[k]) for k in ("on", "dimming", "color_temperature", "color")}


def send_911(service: Service) -> int:
    return service.submit(make_event("911", "payments down", received_at=service.clock.now())).id


def commands_to(bridge: FakeHueBridge, rid: str) -> list[dict[str, Any]]:
    return [c.body for c in bridge.light_commands(rid)]


@pytest.mark.parametrize("was_on", [True, False])
async def test_a_911_turns_the_light_red_at_once_and_the_ack_restores_it_exactly(
        bridge: FakeHueBridge, service_factory: Callable[..., Service], was_on: bool) -> None:
    light = bridge.add_light("Desk", on=was_on, brightness=37.55, mirek=366)  # a warm white, dimmed
    before = look(bridge.light(light))
    service = service_factory(f"lamps: {{{LAMP}: '{url(bridge)}'}}\n")
    async with service.running():
        alarm = send_911(service)
        await eventually(lambda: bridge.light(light)["color"]["xy"] == RED_XY and bridge.light(light)["on"]["on"])
        assert bridge.light(light)["last_transition_ms"] == 0 and bridge.light(light)["dimming"]["brightness"] == 100
        assert service.acknowledge(alarm, by="alice") is SignalAction.DONE
        await eventually(lambda: look(bridge.light(light)) == before)
        assert bridge.light(light)["last_transition_ms"] == 0


async def test_blink_is_the_bridges_signaling_and_the_next_state_stops_it(bridge: FakeHueBridge) -> None:
    light = bridge.add_light("Desk")
    driver = build_driver(url(bridge))
    try:
        before = await driver.read_state()
        await driver.apply(BLINK)
        status = bridge.light(light)["signaling"]["status"]
        assert status["signal"] == "on_off_color" and status["colors"] == [{"xy": SENT_RED}]
        assert (await driver.read_state()).effect is Effect.BLINK
        await driver.apply(before)
        assert "status" not in bridge.light(light)["signaling"]
        assert commands_to(bridge, light)[-2] == {"signaling": {"signal": "no_signal"}}
    finally:
        await driver.close()


async def test_a_light_without_signaling_shows_blink_as_the_steady_colour(bridge: FakeHueBridge) -> None:
    light = bridge.add_light("Old bulb", signals=[])
    driver = build_driver(url(bridge))
    try:
        await driver.apply(BLINK)
        assert "signaling" not in commands_to(bridge, light)[-1]
        assert bridge.light(light)["color"]["xy"] == RED_XY
    finally:
        await driver.close()


async def test_a_room_shows_red_by_one_group_command_and_each_light_gets_its_own_look_back(
        bridge: FakeHueBridge, service_factory: Callable[..., Service]) -> None:
    lights = [bridge.add_light("Sofa", brightness=20.0, xy=(0.2, 0.3)),
              bridge.add_light("Reading", on=False, mirek=250)]
    group = bridge.add_room("Living room", lights)
    before = [look(bridge.light(light)) for light in lights]
    service = service_factory(f"lamps: {{{LAMP}: '{url(bridge, f'/groups/{group}')}'}}\n")
    async with service.running():
        alarm = send_911(service)
        await eventually(lambda: all(bridge.light(light)["color"]["xy"] == RED_XY for light in lights))
        assert [c.rtype for c in bridge.commands] == ["grouped_light"]
        service.acknowledge(alarm, by="alice")
        await eventually(lambda: [look(bridge.light(light)) for light in lights] == before)


async def test_a_burst_stays_within_ten_commands_a_second_the_bridge_never_says_429_and_the_latest_wins(
        bridge: FakeHueBridge, tmp_path: Path) -> None:
    light = bridge.add_light("Desk")
    colors = [f"#{i:02x}40{255 - i:02x}" for i in range(199)] + ["#ff0000"]
    async with running_lamp(build_driver(url(bridge)), tmp_path) as lamp:
        await lamp.burst(colors)
        await eventually(lambda: bridge.light(light)["color"]["xy"] == RED_XY)
    assert most_in_any_window([c.at for c in bridge.commands]) <= 10
    assert all(c.status == 200 for c in bridge.commands)
    assert len(bridge.commands) < len(colors) / 4  # coalesced, never replayed


async def test_a_group_burst_stays_within_one_group_command_a_second(bridge: FakeHueBridge, tmp_path: Path) -> None:
    group = bridge.add_room("Hall", [bridge.add_light("Hall 1"), bridge.add_light("Hall 2")])
    async with running_lamp(build_driver(url(bridge, f"/groups/{group}")), tmp_path) as lamp:
        await lamp.burst([f"#{i:02x}0000" for i in range(30)])
        await eventually(lambda: len(bridge.commands) >= 2)
    assert most_in_any_window([c.at for c in bridge.commands]) == 1
    assert all(c.status == 200 for c in bridge.commands)


async def test_a_429_from_a_bridge_busy_with_other_apps_is_waited_out(bridge: FakeHueBridge) -> None:
    light = bridge.add_light("Desk")
    now = time.monotonic()
    bridge.commands += [Command(now, "light", light, {}, 200) for _ in range(10)]  # another app used the second
    driver = build_driver(url(bridge))
    try:
        await driver.apply(RED)
        assert [c.status for c in bridge.commands[10:]] == [429, 200]
        assert bridge.light(light)["color"]["xy"] == RED_XY
    finally:
        await driver.close()


async def test_a_bridge_that_stops_answering_mid_alert_is_offline_then_restored_when_back(
        bridge: FakeHueBridge, service_factory: Callable[..., Service], monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    light = bridge.add_light("Desk", brightness=50.0, xy=(0.4, 0.4))
    before = look(bridge.light(light))
    service = service_factory(f"lamps: {{{LAMP}: '{url(bridge)}'}}\n")
    async with service.running():
        alarm = send_911(service)
        await eventually(lambda: bridge.light(light)["color"]["xy"] == RED_XY)
        bridge.unplug()
        service.acknowledge(alarm, by="alice")
        await eventually(lambda: not service.lamps[LAMP].online)
        assert "did not answer within 0.5 s" in service.lamp_views()[0].error
        bridge.plug()
        await eventually(lambda: service.lamps[LAMP].online and look(bridge.light(light)) == before)
    assert offline_logs(caplog.records) == (1, 1)


async def test_a_wrong_app_key_is_reported_without_showing_the_key(
        bridge: FakeHueBridge, service_factory: Callable[..., Service], caplog: pytest.LogCaptureFixture) -> None:
    bridge.add_light("Desk")
    caplog.set_level(logging.DEBUG)
    service = service_factory(f"lamps: {{{LAMP}: '{url(bridge, key='not-the-key')}'}}\n")
    async with service.running():
        send_911(service)
        await eventually(lambda: not service.lamps[LAMP].online)
        view = service.lamp_views()[0]
        assert "refused our credentials (HTTP 403)" in view.error and "****@" in view.url
    assert "not-the-key" not in caplog.text + view.error + view.url


async def test_home_assistants_aiohue_reads_and_drives_the_fake_bridge(bridge: FakeHueBridge) -> None:
    """The fake is held to a second client of the real API (Home Assistant's), not only to ours."""
    light = bridge.add_light("Desk", on=False, mirek=300)
    client = HueBridgeV2(f"127.0.0.1:{bridge.port}", APP_KEY)
    try:
        await client.fetch_full_state()
        seen = client.lights[light]
        assert (seen.on.on, seen.color_temperature.mirek, seen.metadata.name) == (False, 300, "Desk")
        await client.lights.set_state(light, on=True, color_xy=(RED_XY["x"], RED_XY["y"]), transition_time=0)
        assert bridge.light(light)["on"]["on"] and bridge.light(light)["color"]["xy"] == RED_XY
    finally:
        await client.close()


def light_reads(bridge: FakeHueBridge, after: float) -> int:
    return sum(1 for r in bridge.received if r.method == "GET" and "/clip/v2/resource/light" in r.path
               and r.arrived > after)


async def test_the_event_stream_keeps_the_state_so_the_first_alert_is_sent_without_a_read_and_restores_exactly(
        bridge: FakeHueBridge, service_factory: Callable[..., Service]) -> None:
    """Issue 13: the bridge tells every change on its event stream; the snapshot comes from it."""
    light = bridge.add_light("Desk", brightness=80.0, xy=(0.4, 0.4))
    service = service_factory(f"lamps: {{{LAMP}: '{url(bridge)}'}}\n")
    async with service.running():
        await eventually(lambda: service.lamps[LAMP].memory.contacted and bridge.listeners)  # first read done
        bridge.set_light(light, {"dimming": {"brightness": 23.5}, "color_temperature": {"mirek": 400}})  # the app
        before = look(bridge.light(light))
        await eventually(lambda: service.lamps[LAMP].memory.known is not None
                         and service.lamps[LAMP].memory.known.brightness == 24)
        sent_at = time.perf_counter()
        alarm = send_911(service)
        await eventually(lambda: bridge.light(light)["color"]["xy"] == RED_XY)
        assert light_reads(bridge, sent_at) == 0  # no read in front of the alert
        service.acknowledge(alarm, by="alice")
        await eventually(lambda: look(bridge.light(light)) == before)  # the app's warm white, exactly


async def test_lamps_on_one_bridge_share_one_stream_and_one_pacing(
        bridge: FakeHueBridge, service_factory: Callable[..., Service]) -> None:
    lights = [bridge.add_light(f"Desk {i}") for i in range(3)]
    lamps = {f"lamp{i}": url(bridge, f"/lights/{i + 1}") for i in range(3)}
    service = service_factory("lamps: {" + ", ".join(f"{n}: '{u}'" for n, u in lamps.items()) + "}\n")
    async with service.running():
        await eventually(lambda: all(service.lamps[n].online for n in lamps) and bridge.listeners)
        assert len(bridge.listeners) == 1  # one event stream for the bridge, not one per lamp
        for i in range(30):  # a storm of different alerts for all three lamps at once
            service.submit(make_event("911", f"storm {i}", received_at=service.clock.now()))
            await asyncio.sleep(0.02)
        await eventually(lambda: all(bridge.light(rid)["color"]["xy"] == RED_XY for rid in lights))
    assert most_in_any_window([c.at for c in bridge.commands]) <= 10  # the bridge's limit, all lamps together
    assert all(c.status == 200 for c in bridge.commands)
