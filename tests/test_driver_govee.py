"""`govee://` through govee-local-api against a fake light speaking the LAN API over UDP (tests/peers/fake_govee.py)."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from lamplighter.drivers.color import from_hsv
from lamplighter.drivers.govee import GoveeDriver
from lamplighter.drivers.registry import build_driver
from lamplighter.errors import DeviceOffline, LampUrlError
from lamplighter.model import Effect, LampState, make_event
from lamplighter.service import Service, SignalAction
from tests.peers.fake_govee import FakeGovee, free_udp_port
from tests.peers.http_fake import most_in_any_window
from tests.peers.lamps import LAMP, eventually, offline_logs, running_lamp, signal

pytestmark = pytest.mark.real_time  # services and lamps driving real peers on the real clock

RED_RGB = {"r": 255, "g": 0, "b": 0}
LOOKS = {  # the light's own looks before an alert, at a brightness a LampState keeps
    "colour": {"color": {"r": 18, "g": 52, "b": 86}, "colorTemInKelvin": 0, "brightness": 37},
    "white": {"color": {"r": 0, "g": 0, "b": 0}, "colorTemInKelvin": 2700, "brightness": 37},
}


@pytest.fixture
def listen_port() -> int:
    return free_udp_port()


@pytest.fixture
async def light(listen_port: int) -> AsyncIterator[FakeGovee]:
    async with FakeGovee(reply_port=listen_port) as fake:
        yield fake


def service_with(service_factory: Callable[..., Service], light: FakeGovee, listen_port: int) -> Service:
    return service_factory(f"lamps: {{{LAMP}: '{light.lamp_url(listen_port, timeout='0.5')}'}}\n")


def send_911(service: Service) -> int:
    return service.submit(make_event("911", "payments down", received_at=service.clock.now())).id


def changes_since(light: FakeGovee, since: float) -> list[dict[str, Any]]:
    return [shown for at, shown in light.changes if at >= since]


@pytest.mark.parametrize("was_on", [True, False])
@pytest.mark.parametrize("look", list(LOOKS))
async def test_a_911_turns_the_light_red_and_on_and_the_ack_restores_it_exactly(
        light: FakeGovee, listen_port: int, service_factory: Callable[..., Service], look: str,
        was_on: bool) -> None:
    before = {**LOOKS[look], "onOff": int(was_on)}
    light.state.update(before)
    service = service_with(service_factory, light, listen_port)
    async with service.running():
        started = time.monotonic()
        alarm = send_911(service)
        await eventually(lambda: light.shows(onOff=1, color=RED_RGB, colorTemInKelvin=0, brightness=100))
        assert changes_since(light, started)[0]["color"] == RED_RGB  # the colour first: no other colour shown
        assert [d.cmd for d in light.commands("colorwc", "brightness", "turn")][:3] == [
            "colorwc", "brightness", "turn"]
        assert service.acknowledge(alarm, by="alice") is SignalAction.DONE
        await eventually(lambda: light.shows(**before))
        restore = [d.cmd for d in light.commands("colorwc", "brightness", "turn")][-3:]
        assert restore == ["colorwc", "brightness", "turn"]  # the look first, then on or off: kept while off


async def test_a_colour_goes_at_full_value_with_its_own_value_in_the_brightness(
        light: FakeGovee, listen_port: int) -> None:
    driver = build_driver(light.lamp_url(listen_port))
    try:
        await driver.apply(LampState(on=True, color="#800000", brightness=100))
        assert await driver.read_state() == LampState(on=True, color="#ff0000", brightness=50)
        assert light.shows(color=RED_RGB, brightness=50)
    finally:
        await driver.close()


async def test_govee_has_no_blink_so_the_lamp_controller_draws_it_as_the_colour_and_dark_in_turn(
        light: FakeGovee, listen_port: int, tmp_path: Path) -> None:
    assert GoveeDriver.effects == frozenset({Effect.SOLID})
    async with running_lamp(build_driver(light.lamp_url(listen_port)), tmp_path) as lamp:
        started = time.monotonic()
        lamp.show(signal("#ff0000", effect=Effect.BLINK))
        await eventually(lambda: [s["onOff"] for s in changes_since(light, started)].count(0) >= 2)
    shown = changes_since(light, started)
    assert {s["color"]["r"] for s in shown} == {255} and {s["onOff"] for s in shown} == {0, 1}


async def test_a_burst_is_coalesced_within_ten_datagrams_a_second_and_ends_on_the_last_colour(
        light: FakeGovee, listen_port: int, tmp_path: Path) -> None:
    colors = [from_hsv(number * 7 % 360, 1.0) for number in range(200)]  # at full value: sent as they are
    last = dict(zip("rgb", (int(colors[-1][i:i + 2], 16) for i in (1, 3, 5)), strict=True))
    async with running_lamp(build_driver(light.lamp_url(listen_port)), tmp_path) as lamp:
        await lamp.burst(colors)
        await eventually(lambda: light.shows(color=last))
    assert most_in_any_window([d.at for d in light.commands()]) <= 10
    assert len(light.commands("colorwc")) < len(colors) / 10  # coalesced, never replayed


async def test_a_light_that_leaves_the_network_mid_alert_is_offline_then_restored_when_back(
        light: FakeGovee, listen_port: int, service_factory: Callable[..., Service],
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    before = {**LOOKS["white"], "onOff": 1}
    light.state.update(before)
    service = service_with(service_factory, light, listen_port)
    async with service.running():
        alarm = send_911(service)
        await eventually(lambda: light.shows(color=RED_RGB, onOff=1))
        light.unplug()
        service.acknowledge(alarm, by="alice")
        await eventually(lambda: not service.lamps[LAMP].online)
        assert "did not answer devStatus within 0.5 s" in service.lamp_views()[0].error
        light.plug()
        await eventually(lambda: service.lamps[LAMP].online and light.shows(**before))
    assert offline_logs(caplog.records) == (1, 1)


async def test_a_light_that_never_answers_a_scan_is_offline(listen_port: int) -> None:
    silent = FakeGovee(reply_port=listen_port)  # ports chosen, never opened: nothing answers
    driver = build_driver(silent.lamp_url(listen_port, timeout="0.3"))
    try:
        with pytest.raises(DeviceOffline, match=r"govee://127\.0\.0\.1\?.* did not answer a scan within 0\.3 s"):
            await driver.read_state()
    finally:
        await driver.close()


async def test_lamps_on_one_listen_port_share_it_and_each_reaches_its_own_light(listen_port: int) -> None:
    async with FakeGovee(reply_port=listen_port) as first, \
            FakeGovee(reply_port=listen_port, host="127.0.0.2", scan_port=first.scan_port,
                      command_port=first.command_port, device="1F:80:C5:32:32:36:72:4F") as second:
        drivers = [build_driver(light.lamp_url(listen_port)) for light in (first, second)]
        await asyncio.gather(*(d.apply(LampState(on=True, color=c)) for d, c in zip(drivers, ("#ff0000", "#0000ff"),
                                                                                       strict=True)))
        assert [await d.read_state() for d in drivers] == [LampState(on=True, color="#ff0000"),
                                                           LampState(on=True, color="#0000ff")]
        await drivers[0].close()
        await drivers[1].apply(LampState(on=False, color="#0000ff"))
        assert (await drivers[1].read_state()).on is False and first.shows(onOff=1)
        await drivers[1].close()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("0.0.0.0", listen_port))  # the last lamp closed, the port is free again


@pytest.mark.parametrize("url", ["govee://192.168.1.60", "govee://192.168.1.60?timeout=5",
                                 "govee://127.0.0.1?scan_port=14001&listen_port=14002&command_port=14003"])
def test_a_govee_url_prints_back_exactly(url: str) -> None:
    driver = build_driver(url)
    assert type(driver).__name__ == "GoveeDriver"
    assert driver.url(privacy=False) == driver.url() == url


@pytest.mark.parametrize(("url", "needle"), [
    ("govee://", "needs the light's IP address: govee://192.168.1.60"),
    ("govee://192.168.1.60:4003", r"takes only the light's IP address: govee://192.168.1.60 \(Govee fixes its ports\)"),
    ("govee://192.168.1.60/lights/1", "takes only the light's IP address"),
    ("govee://strip.local", "needs the light's IPv4 address"),
    ("govee://192.168.1.60?port=4003",
     "unknown option 'port' (options: command_port, listen_port, scan_port, timeout)"),
    ("govee://192.168.1.60?listen_port=70000", "listen_port must be a port number from 1 to 65535, not '70000'"),
    ("govee://192.168.1.60?scan_port=x", "scan_port must be a port number from 1 to 65535"),
    ("govee://192.168.1.60?timeout=-1", "timeout must be a number of seconds from 0 to 120"),
])
def test_bad_govee_urls_name_the_problem(url: str, needle: str) -> None:
    with pytest.raises(LampUrlError, match=needle.replace("(options", r"\(options").replace("timeout)", r"timeout\)")):
        build_driver(url)

