"""`wiz://` through pywizlight against pywizlight's own fake bulb, run as a process on loopback (tests/peers/wiz.py)."""

from __future__ import annotations

import os
import signal as signals
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from lamplighter.drivers.registry import build_driver
from lamplighter.drivers.wiz import WizDriver
from lamplighter.errors import DeviceOffline, LampUrlError
from lamplighter.model import Effect, LampState, make_event
from lamplighter.service import Service, SignalAction
from tests.peers.http_fake import most_in_any_window
from tests.peers.lamps import LAMP, eventually, offline_logs, running_lamp
from tests.peers.wiz import Pilot, WizBulb

pytestmark = pytest.mark.real_time  # services and lamps driving real peers on the real clock

SCENE: Pilot = {"sceneId": 4, "speed": 120, "dimming": 40}  # Party, slower than its default
WHITE: Pilot = {"temp": 2700, "dimming": 37}
COLOR: Pilot = {"r": 12, "g": 200, "b": 90, "c": 0, "w": 30, "dimming": 55}
POWER_ON: Pilot = {"state": True, "temp": 4200, "dimming": 100}  # how a bulb comes back after a power cut
RED = {"state": True, "r": 255, "g": 0, "b": 0, "w": 0, "dimming": 100}


@pytest.fixture
def bulb(tmp_path: Path) -> Iterator[WizBulb]:
    with WizBulb(tmp_path / "wiz", {"state": True, **WHITE}).start() as started:
        yield started


def service_with(service_factory: Callable[..., Service], bulb: WizBulb) -> Service:
    return service_factory(f"lamps: {{{LAMP}: '{bulb.lamp_url(timeout='0.5')}'}}\n")


def send_911(service: Service) -> int:
    return service.submit(make_event("911", "payments down", received_at=service.clock.now())).id


def shows(bulb: WizBulb, expected: dict[str, Any]) -> bool:
    pilot = bulb.pilot()
    return all(pilot.get(k) == v for k, v in expected.items())


@pytest.mark.parametrize("was_on", [True, False])
@pytest.mark.parametrize(("look", "restoring"), [
    (SCENE, [{"state": True, "sceneId": 4, "dimming": 40}, {"speed": 120}]),
    (WHITE, [{"state": True, "temp": 2700, "dimming": 37}]),
    (COLOR, [{"state": True, "r": 12, "g": 200, "b": 90, "c": 0, "w": 30, "dimming": 55}]),
], ids=["scene", "white", "color"])
async def test_a_911_turns_the_bulb_red_in_one_command_and_the_ack_restores_its_own_look(
        tmp_path: Path, service_factory: Callable[..., Service], look: Pilot, restoring: list[Pilot],
        was_on: bool) -> None:
    with WizBulb(tmp_path / "wiz", {"state": was_on, **look}).start() as bulb:
        service = service_with(service_factory, bulb)
        async with service.running():
            alarm = send_911(service)
            await eventually(lambda: bulb.set_pilots() == [RED])  # one setPilot; WiZ has no transition to zero
            assert shows(bulb, RED)
            assert service.acknowledge(alarm, by="alice") is SignalAction.DONE
            expected = restoring + ([] if was_on else [{"state": False}])  # its look kept for the next switch-on
            await eventually(lambda: bulb.set_pilots() == [RED, *expected])
            assert shows(bulb, {**look, "state": was_on})


async def test_a_colour_goes_at_full_value_with_its_own_value_in_the_dimming(bulb: WizBulb) -> None:
    driver = build_driver(bulb.lamp_url())
    try:
        await driver.apply(LampState(on=True, color="#800000", brightness=100))
        await driver.apply(LampState(on=True, color="#0000ff", brightness=4))
        assert bulb.set_pilots() == [{"state": True, "r": 255, "g": 0, "b": 0, "w": 0, "dimming": 50},
                                     {"state": True, "r": 0, "g": 0, "b": 255, "w": 0, "dimming": 10}]  # WiZ's least
        assert await driver.read_state() == LampState(on=True, color="#0000ff", brightness=10)
    finally:
        await driver.close()


def test_wiz_has_no_native_blink_or_pulse_so_the_controller_draws_them() -> None:
    assert WizDriver.effects == frozenset({Effect.SOLID})


async def test_a_burst_reaches_the_bulb_as_at_most_5_commands_a_second_and_the_latest_wins(
        bulb: WizBulb, tmp_path: Path) -> None:
    colors = [f"#{i:02x}40{255 - i:02x}" for i in range(199)] + ["#00ff00"]
    async with running_lamp(build_driver(bulb.lamp_url()), tmp_path) as lamp:
        await lamp.burst(colors)
        await eventually(lambda: shows(bulb, {"state": True, "r": 0, "g": 255, "b": 0}))
    assert most_in_any_window(bulb.arrivals()) <= 5
    assert len(bulb.set_pilots()) < len(colors) / 10  # coalesced, never replayed


async def test_a_bulb_unplugged_mid_alert_is_offline_then_restored_when_back_on_the_same_port(
        bulb: WizBulb, service_factory: Callable[..., Service], monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    service = service_with(service_factory, bulb)
    async with service.running():
        alarm = send_911(service)
        await eventually(lambda: shows(bulb, RED))
        bulb.stop()
        service.acknowledge(alarm, by="alice")
        await eventually(lambda: not service.lamps[LAMP].online)
        assert "cannot reach" in service.lamp_views()[0].error
        bulb.pilot_at_power_on = POWER_ON
        bulb.start()
        await eventually(lambda: service.lamps[LAMP].online and shows(bulb, {"state": True, **WHITE}))
    assert offline_logs(caplog.records) == (1, 1)


async def test_a_bulb_that_stops_answering_is_offline_after_the_timeout(bulb: WizBulb) -> None:
    driver = build_driver(bulb.lamp_url(timeout="0.5"))
    assert bulb.process is not None
    os.kill(bulb.process.pid, signals.SIGSTOP)  # hung: the port stays open, nothing answers
    try:
        with pytest.raises(DeviceOffline, match=r"wiz://127\.0\.0\.1:\d+\?timeout=0\.5 did not answer within 0\.5 s"):
            await driver.read_state()
    finally:
        os.kill(bulb.process.pid, signals.SIGCONT)
        await driver.close()


@pytest.mark.parametrize("url", ["wiz://192.168.1.60", "wiz://bulb.local:38899?timeout=5"])
def test_a_wiz_url_prints_back_exactly(url: str) -> None:
    driver = build_driver(url)
    assert isinstance(driver, WizDriver)
    assert driver.url(privacy=False) == driver.url() == url


@pytest.mark.parametrize(("url", "needle"), [
    ("wiz://", "needs the bulb's address"),
    ("wiz://192.168.1.60/light", "takes only an address"),
    ("wiz://admin:s3cret@192.168.1.60", "takes only an address"),
    ("wiz://192.168.1.60?transition=0", "unknown option 'transition' (options: timeout)"),
    ("wiz://192.168.1.60?timeout=0", "timeout must be a number of seconds"),
])
def test_bad_wiz_urls_name_the_problem_without_secrets(url: str, needle: str) -> None:
    with pytest.raises(LampUrlError) as caught:
        build_driver(url)
    assert needle in str(caught.value) and "s3cret" not in str(caught.value)
