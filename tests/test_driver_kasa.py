"""`kasa://` through python-kasa against the real TP-Link device simulator (npm, tests/peers/kasa.py).

The simulator speaks the legacy protocol (XOR over TCP) only: the credentials path of
newer devices (KLAP) is driven here through discovery of a legacy device, not a KLAP one.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from lamplighter.drivers.registry import build_driver
from lamplighter.errors import LampUrlError
from lamplighter.model import LampState, make_event
from lamplighter.service import Service, SignalAction
from tests.peers.http_fake import most_in_any_window
from tests.peers.kasa import KasaDevice
from tests.peers.lamps import LAMP, eventually, offline_logs, running_lamp

pytestmark = pytest.mark.real_time  # services and lamps driving real peers on the real clock

Json = dict[str, Any]
RELAY_ON = {"system": {"set_relay_state": {"state": 1}}}
RELAY_OFF = {"system": {"set_relay_state": {"state": 0}}}
LIGHT = "smartlife.iot.smartbulb.lightingservice"
WARM_WHITE: Json = {"hue": 0, "saturation": 0, "color_temp": 2700, "brightness": 37}
TEAL: Json = {"hue": 200, "saturation": 60, "color_temp": 0, "brightness": 55}
RED: Json = {"hue": 0, "saturation": 100, "color_temp": 0, "brightness": 100}


@pytest.fixture
def plug(tmp_path: Path) -> Iterator[KasaDevice]:
    with KasaDevice(tmp_path / "kasa", "hs100", {"relay_state": 0}).start() as started:
        yield started


def bulb_at_power_on(look: Json, on: bool) -> Json:
    """A bulb's sysinfo as a real LB130 reports it: off, its look is kept under dft_on_state."""
    state = {"on_off": 1, "mode": "normal", **look} if on else {"on_off": 0, "dft_on_state": {"mode": "normal", **look}}
    return {"light_state": state}


def light_step(on: bool, look: Json | None = None) -> Json:
    """A transition_light_state as python-kasa sends it, with a zero transition."""
    return {LIGHT: {"transition_light_state": {**(look or {}), "on_off": int(on), "transition_period": 0,
                                               "ignore_default": 1}}}


def commands(device: KasaDevice) -> list[Json]:
    """What changed the device: relay and light commands, without the reads."""
    return [c for c in device.commands()
            if "set_relay_state" in c.get("system", {}) or "transition_light_state" in c.get(LIGHT, {})]


def send_911(service: Service) -> int:
    return service.submit(make_event("911", "payments down", received_at=service.clock.now())).id


@pytest.mark.parametrize("was_on", [True, False])
async def test_a_plug_lamp_is_switched_on_by_a_blinking_911_without_clicking_and_back_to_how_it_was_by_the_ack(
        tmp_path: Path, service_factory: Callable[..., Service], was_on: bool) -> None:
    with KasaDevice(tmp_path / "kasa", "hs100", {"relay_state": int(was_on)}).start() as plug:
        service = service_factory(f"lamps: {{{LAMP}: '{plug.lamp_url(timeout='0.5')}'}}\n"
                                  "levels: {'911': {effect: blink}}\n")
        async with service.running():
            alarm = send_911(service)
            await eventually(lambda: service.lamps[LAMP].showing is not None and plug.sysinfo().get("relay_state") == 1)
            await asyncio.sleep(1.2)  # two emulated blinks: the relay stays on
            assert commands(plug) == ([] if was_on else [RELAY_ON]) and plug.sysinfo().get("relay_state") == 1
            assert service.acknowledge(alarm, by="alice") is SignalAction.DONE
            await eventually(lambda: not service.lamps[LAMP].showing and plug.sysinfo().get("relay_state") == was_on)
        assert commands(plug) == ([] if was_on else [RELAY_ON, RELAY_OFF])


async def test_a_plug_siren_sounds_for_an_unacknowledged_911_and_the_ack_silences_it(
        plug: KasaDevice, service_factory: Callable[..., Service]) -> None:
    service = service_factory(f"lamps: {{{LAMP}: 'virtual://desk'}}\nsirens: {{hall: '{plug.lamp_url()}'}}\n"
                              "levels: {'911': {escalate_after: 0s}}\n")
    async with service.running():
        alarm = send_911(service)
        await eventually(lambda: plug.sysinfo().get("relay_state") == 1)
        service.acknowledge(alarm, by="alice")
        await eventually(lambda: plug.sysinfo().get("relay_state") == 0)
    assert commands(plug) == [RELAY_ON, RELAY_OFF]


@pytest.mark.parametrize("was_on", [True, False])
@pytest.mark.parametrize("look", [WARM_WHITE, TEAL], ids=["white", "color"])
async def test_a_911_turns_a_bulb_red_at_once_and_the_ack_restores_its_own_look(
        tmp_path: Path, service_factory: Callable[..., Service], look: Json, was_on: bool) -> None:
    with KasaDevice(tmp_path / "kasa", "lb130", bulb_at_power_on(look, was_on)).start() as bulb:
        service = service_factory(f"lamps: {{{LAMP}: '{bulb.lamp_url(timeout='0.5')}'}}\n")
        async with service.running():
            alarm = send_911(service)
            await eventually(lambda: commands(bulb) == [light_step(True, RED)])  # transition_period 0
            assert service.acknowledge(alarm, by="alice") is SignalAction.DONE
            restore = [light_step(True, look)] + ([] if was_on else [light_step(False)])  # its look kept while off
            await eventually(lambda: commands(bulb) == [light_step(True, RED), *restore])
    assert bulb.sysinfo()["light_state"]["on_off"] == was_on


async def test_a_bulb_colour_goes_at_full_value_with_its_own_value_in_the_brightness(tmp_path: Path) -> None:
    with KasaDevice(tmp_path / "kasa", "lb130", bulb_at_power_on(WARM_WHITE, True)).start() as bulb:
        driver = build_driver(bulb.lamp_url())
        try:
            await driver.apply(LampState(on=True, color="#008080", brightness=100))
            assert commands(bulb) == [light_step(True, {"brightness": 50, "hue": 180, "saturation": 100,
                                                         "color_temp": 0})]
            assert await driver.read_state() == LampState(on=True, color="#00ffff", brightness=50)
        finally:
            await driver.close()


async def test_a_burst_reaches_the_bulb_as_at_most_5_requests_a_second_and_the_latest_wins(tmp_path: Path) -> None:
    colors = [f"#{i:02x}40{255 - i:02x}" for i in range(199)] + ["#00ff00"]
    with KasaDevice(tmp_path / "kasa", "lb130", bulb_at_power_on(WARM_WHITE, True)).start() as bulb:
        async with running_lamp(build_driver(bulb.lamp_url()), tmp_path) as lamp:
            await lamp.burst(colors)
            await eventually(lambda: bool(commands(bulb)) and commands(bulb)[-1] == light_step(True, {
                "brightness": 100, "hue": 120, "saturation": 100, "color_temp": 0}))
        assert most_in_any_window(bulb.arrivals()) <= 5
        assert len(commands(bulb)) < len(colors) / 10  # coalesced, never replayed


async def test_a_plug_unplugged_mid_alert_is_offline_then_switched_back_when_it_returns_on_the_same_port(
        plug: KasaDevice, service_factory: Callable[..., Service], monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    service = service_factory(f"lamps: {{{LAMP}: '{plug.lamp_url(timeout='0.5')}'}}\n")
    async with service.running():
        alarm = send_911(service)
        await eventually(lambda: plug.sysinfo().get("relay_state") == 1)
        plug.stop()
        service.acknowledge(alarm, by="alice")
        await eventually(lambda: not service.lamps[LAMP].online)
        assert "cannot reach" in service.lamp_views()[0].error
        plug.sysinfo_at_power_on = {"relay_state": 1}  # it comes back on, as many plugs do after a power cut
        plug.start()
        await eventually(lambda: service.lamps[LAMP].online and plug.sysinfo().get("relay_state") == 0)
    assert offline_logs(caplog.records) == (1, 1)


async def test_a_url_with_an_account_finds_the_device_by_discovery(plug: KasaDevice) -> None:
    host_port = plug.lamp_url().removeprefix("kasa://")
    driver = build_driver(f"kasa://me%40example.com:s3cret@{host_port}?timeout=2")
    try:
        assert await driver.read_state() == LampState(on=False)
        await driver.apply(LampState(on=True, color="#ff0000"))
        assert plug.sysinfo().get("relay_state") == 1
    finally:
        await driver.close()


URLS = [
    ("kasa://192.168.1.50", "kasa://192.168.1.50"),
    ("kasa://192.168.1.50:9999?timeout=5", "kasa://192.168.1.50:9999?timeout=5"),
    ("kasa://me%40example.com:s3cret@192.168.1.51", "kasa://****:****@192.168.1.51"),
]


@pytest.mark.parametrize(("url", "shown"), URLS)
def test_a_kasa_url_prints_back_exactly_and_hides_the_account(url: str, shown: str) -> None:
    driver = build_driver(url)
    assert type(driver).__name__ == "KasaDriver"
    assert driver.url(privacy=False) == url
    assert driver.url() == shown


@pytest.mark.parametrize(("url", "needle"), [
    ("kasa://", "needs the device's address"),
    ("kasa://192.168.1.50/plug", "takes only an address"),
    ("kasa://me%40example.com@192.168.1.50", "needs both the TP-Link account's user and password"),
    ("kasa://:s3cret@192.168.1.50", "needs both the TP-Link account's user and password"),
    ("kasa://me:s3cret@192.168.1.50?transition=0", "unknown option 'transition' (options: timeout)"),
    ("kasa://192.168.1.50?timeout=forever", "timeout must be a number of seconds"),
])
def test_bad_kasa_urls_name_the_problem_without_secrets(url: str, needle: str) -> None:
    with pytest.raises(LampUrlError) as caught:
        build_driver(url)
    assert needle in str(caught.value) and "s3cret" not in str(caught.value)


def test_without_the_kasa_extra_a_kasa_lamp_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "kasa", None)  # python-kasa not installed: importing it fails
    monkeypatch.delitem(sys.modules, "lamplighter.drivers.kasa", raising=False)
    with pytest.raises(LampUrlError, match=r"pip install 'lamplighter\[kasa\]'"):
        build_driver("kasa://192.168.1.50")
