"""`blink1://` through the real blink1 library, against a fake blink(1) at the USB HID boundary (peers/fake_blink1)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from lamplighter.drivers.registry import build_driver
from lamplighter.errors import DeviceOffline, DriverError, LampUrlError
from lamplighter.model import Effect, LampState, make_event
from lamplighter.service import Service, SignalAction
from tests.peers.fake_blink1 import RGB, FakeBlink1, FakeUsb
from tests.peers.http_fake import most_in_any_window
from tests.peers.lamps import LAMP, RED, eventually, offline_logs, running_lamp

pytestmark = pytest.mark.real_time  # services and lamps driving real peers on the real clock

TOP: RGB = (12, 34, 56)  # raw values no LampState rounds back to: only an exact restore brings them back
BOTTOM: RGB = (200, 100, 0)
FULL_RED: RGB = (255, 0, 0)


@pytest.fixture
def blink() -> Iterator[FakeBlink1]:
    device = FakeBlink1("2000ABCD")
    with FakeUsb(device).installed():
        yield device


def send_911(service: Service) -> int:
    return service.submit(make_event("911", "payments down", received_at=service.clock.now())).id


async def colors_seen(blink: FakeBlink1, seconds: float) -> set[RGB]:
    """LED A's colour sampled every 20 ms for `seconds`."""
    seen: set[RGB] = set()
    for _ in range(round(seconds / 0.02)):
        seen.add(blink.colors()[0])
        await asyncio.sleep(0.02)
    return seen


@pytest.mark.parametrize("was_on", [True, False])
async def test_a_911_turns_the_blink1_red_at_once_and_the_ack_restores_both_leds_exactly(
        blink: FakeBlink1, service_factory: Callable[..., Service], was_on: bool) -> None:
    before = (TOP, BOTTOM) if was_on else ((0, 0, 0), (0, 0, 0))
    blink.set_colors(*before)
    service = service_factory(f"lamps: {{{LAMP}: 'blink1://'}}\n")
    async with service.running():
        alarm = send_911(service)
        await eventually(lambda: blink.colors() == (FULL_RED, FULL_RED))
        command = blink.color_commands()[-1].data
        assert (chr(command[1]), command[5], command[6]) == ("c", 0, 0)  # fade to RGB in 0 ms
        assert service.acknowledge(alarm, by="alice") is SignalAction.DONE
        await eventually(lambda: blink.colors() == before)
        assert all(r.data[5:7] == b"\0\0" for r in blink.color_commands())


@pytest.mark.parametrize(("effect", "seconds", "dimmest"), [(Effect.BLINK, 1.2, 0), (Effect.PULSE, 2.2, 31)])
async def test_blink_and_pulse_are_patterns_the_blink1_plays_itself_and_the_next_colour_stops_them(
        blink: FakeBlink1, effect: Effect, seconds: float, dimmest: int) -> None:
    """Blink: red and dark; pulse: red down to 35 % (31 after the library's gamma) and back."""
    driver = build_driver("blink1://")
    try:
        await driver.apply(LampState(on=True, color="#ff0000", effect=effect))
        assert blink.playing()
        seen = await colors_seen(blink, seconds)
        assert FULL_RED in seen and dimmest <= min(red for red, _, _ in seen) <= dimmest + 12
        assert await driver.read_state() == LampState(on=True, color="#ff0000", effect=effect)  # no re-apply
        await driver.apply(RED)
        assert not blink.playing()
        assert await colors_seen(blink, 0.5) == {FULL_RED}
        assert await driver.read_state() == RED
    finally:
        await driver.close()


async def test_a_burst_reaches_the_blink1_as_at_most_20_colours_a_second_and_the_latest_wins(
        blink: FakeBlink1, tmp_path: Path) -> None:
    colors = [f"#{i:02x}{255 - i:02x}40" for i in range(199)] + ["#0000ff"]
    async with running_lamp(build_driver("blink1://"), tmp_path) as lamp:
        await lamp.burst(colors)
        await eventually(lambda: blink.colors() == ((0, 0, 255), (0, 0, 255)))
    arrivals = [r.at for r in blink.color_commands()]
    assert most_in_any_window(arrivals) <= 20
    assert len(arrivals) < len(colors) / 4  # coalesced, never replayed


async def test_a_blink1_unplugged_mid_alert_is_offline_then_restored_when_plugged_back(
        blink: FakeBlink1, service_factory: Callable[..., Service], monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    blink.set_colors(TOP, BOTTOM)
    service = service_factory(f"lamps: {{{LAMP}: 'blink1://2000abcd'}}\n")
    async with service.running():
        alarm = send_911(service)
        await eventually(lambda: blink.colors() == (FULL_RED, FULL_RED))
        blink.unplug()
        service.acknowledge(alarm, by="alice")
        await eventually(lambda: not service.lamps[LAMP].online)
        await eventually(lambda: "no blink(1) with serial 2000abcd is plugged in" in service.lamp_views()[0].error)
        blink.plug()  # it powers up dark; the restore puts both LEDs back
        await eventually(lambda: service.lamps[LAMP].online and blink.colors() == (TOP, BOTTOM))
    assert offline_logs(caplog.records) == (1, 1)


async def test_a_serial_picks_that_blink1_whatever_its_case_and_a_missing_one_names_those_plugged_in() -> None:
    first, second = FakeBlink1("2000ABCD"), FakeBlink1("3a1b2c3d")
    with FakeUsb(first, second).installed():
        driver = build_driver("blink1://3A1B2C3D")
        try:
            await driver.apply(RED)
            assert (first.colors()[0], second.colors()[0]) == ((0, 0, 0), FULL_RED)
        finally:
            await driver.close()
        missing = build_driver("blink1://20001111")
        with pytest.raises(DeviceOffline, match=r"no blink\(1\) with serial 20001111 is plugged in "
                                                r"\(plugged in: 2000ABCD, 3a1b2c3d\)"):
            await missing.read_state()


@pytest.mark.parametrize(("version", "locked", "needle"), [
    ("14", False, r"is a mk1 \(firmware 104\), which cannot report its colour"),
    ("25", True, "plugged in but cannot be opened: give this user access to it"),
])
async def test_a_blink1_that_cannot_serve_says_why(version: str, locked: bool, needle: str) -> None:
    device = FakeBlink1(version=version)
    device.locked = locked
    with FakeUsb(device).installed():
        driver = build_driver("blink1://")
        with pytest.raises(DriverError, match=needle):
            await driver.read_state()


@pytest.mark.parametrize("url", ["blink1://", "blink1://2000ABCD", "blink1://3a1b2c3d"])
def test_blink1_urls_print_back_exactly(url: str) -> None:
    driver = build_driver(url)
    assert type(driver).__name__ == "Blink1Driver"
    assert driver.url(privacy=False) == driver.url() == url
    assert build_driver(driver.url()).url() == url


@pytest.mark.parametrize(("url", "needle"), [
    ("blink1://2000ABC", "the serial number is 8 hex digits, e.g. blink1://2000ABCD"),
    ("blink1://usb-1", "the serial number is 8 hex digits"),
    ("blink1://2000ABCD/led/1", r"takes only a serial number: blink1://\[SERIAL\]"),
    ("blink1://2000ABCD:2", "takes only a serial number"),
    ("blink1://?gamma=1", r"unknown option 'gamma' \(options: none\)"),
])
def test_bad_blink1_urls_name_the_problem(url: str, needle: str) -> None:
    with pytest.raises(LampUrlError, match=needle):
        build_driver(url)
