"""`yeelight://` via the yeelight library against a fake bulb speaking its protocol (tests/peers/fake_yeelight.py)."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from lamplighter.drivers import yeelight as yeelight_module
from lamplighter.drivers.color import from_hsv
from lamplighter.drivers.registry import build_driver
from lamplighter.errors import DeviceOffline, DriverError, LampUrlError
from lamplighter.model import Effect, LampState, make_event
from lamplighter.service import Service, SignalAction
from tests.peers.fake_yeelight import ALL_METHODS, FakeYeelight
from tests.peers.http_fake import most_in_any_window
from tests.peers.lamps import LAMP, RED, eventually, offline_logs, running_lamp

pytestmark = pytest.mark.real_time  # services and lamps driving real peers on the real clock

RED_RGB = 0xFF0000
LOOKS = {  # the bulb's own looks before an alert, in each colour mode, at a brightness a LampState keeps
    "rgb": {"color_mode": 1, "rgb": 0x123456, "bright": 37},
    "ct": {"color_mode": 2, "ct": 2700, "bright": 37},
    "hsv": {"color_mode": 3, "hue": 120, "sat": 50, "bright": 37},
}
USER_FLOW = (0, 0, "4000,1,5838189,60,4000,1,6689834,60")  # the Yeelight app's "Romance" scene
SUDDEN = ("sudden", 0)


@pytest.fixture
async def bulb() -> AsyncIterator[FakeYeelight]:
    async with FakeYeelight() as fake:
        yield fake


def service_with(service_factory: Callable[..., Service], bulb: FakeYeelight) -> Service:
    return service_factory(f"lamps: {{{LAMP}: '{bulb.lamp_url(timeout='0.5')}'}}\n")


def send_911(service: Service) -> int:
    return service.submit(make_event("911", "payments down", received_at=service.clock.now())).id


def shown_since(bulb: FakeYeelight, since: float) -> list[dict[str, Any]]:
    return [shown for at, shown in bulb.changes if at >= since]


async def brightness_seen(bulb: FakeYeelight, seconds: float) -> set[int]:
    """The bulb's brightness sampled every 25 ms for `seconds`."""
    seen: set[int] = set()
    for _ in range(round(seconds / 0.025)):
        seen.add(bulb.state["bright"])
        await asyncio.sleep(0.025)
    return seen


@pytest.mark.parametrize("was_on", [True, False])
@pytest.mark.parametrize("mode", list(LOOKS))
async def test_a_911_turns_the_bulb_red_at_once_and_the_ack_restores_its_colour_mode_exactly(
        bulb: FakeYeelight, service_factory: Callable[..., Service], mode: str, was_on: bool) -> None:
    before = {**LOOKS[mode], "power": "on" if was_on else "off"}
    bulb.state.update(before)
    service = service_with(service_factory, bulb)
    async with service.running():
        started = time.monotonic()
        alarm = send_911(service)
        await eventually(lambda: bulb.shows(power="on", color_mode=1, rgb=RED_RGB, bright=100))
        first = next(shown for shown in shown_since(bulb, started) if shown["power"] == "on")
        assert (first["color_mode"], first["rgb"]) == (1, RED_RGB)  # no fade through the old colour
        alert = [c for c in bulb.executed() if c.method != "get_prop"]
        assert all(c.transition in (None, SUDDEN) for c in alert) and {c.method for c in alert} <= {
            "set_rgb", "set_bright", "set_scene"}
        assert service.acknowledge(alarm, by="alice") is SignalAction.DONE
        await eventually(lambda: bulb.shows(**before))
    assert bulb.errors() == []


async def test_a_colour_flow_the_user_had_running_runs_again_after_the_ack(
        bulb: FakeYeelight, service_factory: Callable[..., Service]) -> None:
    bulb.start_flow(*USER_FLOW)
    service = service_with(service_factory, bulb)
    async with service.running():
        alarm = send_911(service)
        await eventually(lambda: bulb.shows(flowing=0, rgb=RED_RGB, bright=100))
        service.acknowledge(alarm, by="alice")
        await eventually(lambda: bulb.shows(flowing=1, flow_params="0,0,4000,1,5838189,60,4000,1,6689834,60"))
    assert bulb.executed("start_cf")[-1].params == list(USER_FLOW)


@pytest.mark.parametrize(("effect", "seconds", "dimmest"), [(Effect.BLINK, 1.2, 1), (Effect.PULSE, 2.2, 35)])
async def test_blink_and_pulse_are_the_bulbs_own_colour_flows_and_the_next_colour_stops_them(
        bulb: FakeYeelight, effect: Effect, seconds: float, dimmest: int) -> None:
    driver = build_driver(bulb.lamp_url())
    try:
        await driver.apply(LampState(on=True, color="#ff0000", effect=effect))
        (flow,) = bulb.executed("start_cf")
        assert flow.params[:2] == [0, 1]  # forever, and stay on the last step if ever stopped
        seen = await brightness_seen(bulb, seconds)
        assert (min(seen), max(seen)) == (dimmest, 100)
        assert await driver.read_state() == LampState(on=True, color="#ff0000", effect=effect)
        await driver.apply(RED)
        assert bulb.shows(flowing=0, rgb=RED_RGB)
        assert await brightness_seen(bulb, 0.6) == {100}
    finally:
        await driver.close()


async def test_a_blink_on_a_bulb_that_is_off_switches_it_on_into_the_flow_in_one_command(bulb: FakeYeelight) -> None:
    bulb.state["power"] = "off"
    driver = build_driver(bulb.lamp_url())
    try:
        await driver.read_state()
        await driver.apply(LampState(on=True, color="#00ff00", effect=Effect.BLINK))
        assert [c.method for c in bulb.executed()] == ["get_prop", "set_scene"]
        assert bulb.shows(power="on", flowing=1) and bulb.executed()[-1].params[0] == "cf"
    finally:
        await driver.close()


async def test_a_colour_goes_at_full_value_with_its_own_value_in_the_brightness(bulb: FakeYeelight) -> None:
    driver = build_driver(bulb.lamp_url())
    try:
        await driver.apply(LampState(on=True, color="#800000", brightness=100))
        assert bulb.shows(rgb=RED_RGB, bright=50)
        await driver.apply(LampState(on=True, color="#ff0000", brightness=50))  # the same look: nothing to send
        assert [c.method for c in bulb.executed()] == ["get_prop", "set_rgb", "set_bright"]
    finally:
        await driver.close()


async def test_a_burst_is_coalesced_within_the_bulbs_quota_and_ends_on_the_last_colour(
        bulb: FakeYeelight, tmp_path: Path) -> None:
    colors = [from_hsv(number * 7 % 360, 1.0) for number in range(200)]  # at full value: sent as they are
    async with running_lamp(build_driver(bulb.lamp_url()), tmp_path) as lamp:
        await lamp.burst(colors)
        await eventually(lambda: bulb.shows(rgb=int(colors[-1][1:], 16)))
    assert bulb.errors() == []
    assert most_in_any_window([c.at for c in bulb.commands], window=60.0) <= 55
    assert len(bulb.executed("set_rgb")) < len(colors) / 20  # coalesced, never replayed


async def test_changes_faster_than_the_quota_allows_are_paced_so_the_bulb_never_refuses_one(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # The quota scaled down in time: 6 commands a second per connection, the driver keeping to 5.
    monkeypatch.setattr(yeelight_module, "QUOTA_WINDOW", 1.0)
    monkeypatch.setattr(yeelight_module, "COMMANDS_PER_WINDOW", 5)
    async with FakeYeelight(quota=6, window=1.0) as bulb:
        driver = build_driver(bulb.lamp_url())
        try:
            for number in range(14):
                await driver.apply(LampState(on=True, color=f"#ff{number:02x}00"))
        finally:
            await driver.close()
    assert bulb.errors() == []
    assert most_in_any_window([c.at for c in bulb.commands]) <= 6
    assert bulb.shows(rgb=0xFF0D00)


async def test_a_bulb_answering_client_quota_exceeded_is_asked_again_on_a_new_connection(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(yeelight_module, "QUOTA_RETRY_WAITS", (0.05, 0.1))
    async with FakeYeelight(quota=1) as bulb:  # another app used this connection's quota
        driver = build_driver(bulb.lamp_url())
        try:
            await driver.apply(RED)
        finally:
            await driver.close()
    assert bulb.shows(rgb=RED_RGB) and "client quota exceeded" in bulb.errors()
    assert [c.connection for c in bulb.executed()] == [1, 2]  # get_prop, then set_rgb on a new connection
    assert bulb.most_connections == 1


async def test_a_bulb_that_keeps_answering_client_quota_exceeded_is_a_driver_error(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(yeelight_module, "QUOTA_RETRY_WAITS", (0.05, 0.1))
    async with FakeYeelight(total_quota=1) as bulb:  # every connection's share is used up
        driver = build_driver(bulb.lamp_url())
        try:
            with pytest.raises(DriverError, match="kept answering 'client quota exceeded' to set_rgb"):
                await driver.apply(RED)
        finally:
            await driver.close()
    assert bulb.errors() == ["client quota exceeded"] * 3  # three tries, then it gives up


async def test_a_bulb_that_leaves_the_network_mid_alert_is_offline_then_restored_when_back(
        bulb: FakeYeelight, service_factory: Callable[..., Service], monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    bulb.state.update(LOOKS["ct"])
    service = service_with(service_factory, bulb)
    async with service.running():
        alarm = send_911(service)
        await eventually(lambda: bulb.shows(rgb=RED_RGB, color_mode=1))
        bulb.unplug()
        service.acknowledge(alarm, by="alice")
        await eventually(lambda: not service.lamps[LAMP].online)
        # which command meets the gone bulb first (a read-back or the restore) decides the words
        error = service.lamp_views()[0].error
        assert re.search(r"(cannot connect|lost the connection) to yeelight://127\.0\.0\.1", error), error
        await bulb.plug()
        await eventually(lambda: service.lamps[LAMP].online and bulb.shows(power="on", **LOOKS["ct"]))
    assert offline_logs(caplog.records) == (1, 1)
    assert bulb.most_connections == 1  # one connection at a time, never piling up to the bulb's four


async def test_a_bulb_that_stops_answering_is_offline_after_the_timeout_and_reached_again(bulb: FakeYeelight) -> None:
    driver = build_driver(bulb.lamp_url(timeout="0.3"))
    try:
        await driver.read_state()
        bulb.unplug(hang=True)
        with pytest.raises(DeviceOffline, match=r"did not answer within 0\.3 s"):
            await driver.apply(RED)
        await bulb.plug()
        await driver.apply(RED)
        assert bulb.shows(rgb=RED_RGB)
    finally:
        await driver.close()


async def test_a_bulb_already_serving_four_connections_drops_ours_and_the_lamp_is_offline(bulb: FakeYeelight) -> None:
    others = [await asyncio.open_connection(bulb.host, bulb.port) for _ in range(4)]  # the app, HA, ...
    driver = build_driver(bulb.lamp_url(timeout="0.5"))
    try:
        with pytest.raises(DeviceOffline, match=r"lost the connection to yeelight://127\.0\.0\.1"):
            await driver.read_state()
        assert bulb.commands == []
    finally:
        await driver.close()
        for _, writer in others:
            writer.close()


async def test_a_white_bulb_refusing_a_colour_is_a_driver_error_naming_the_command() -> None:
    async with FakeYeelight(methods=ALL_METHODS - {"set_rgb", "set_hsv"}) as bulb:
        driver = build_driver(bulb.lamp_url())
        try:
            with pytest.raises(DriverError, match=r"yeelight://127\.0\.0\.1:\d+ refused set_rgb: method not supported"):
                await driver.apply(RED)
        finally:
            await driver.close()


async def test_a_bulb_answering_nonsense_is_a_driver_error(bulb: FakeYeelight) -> None:
    bulb.state["color_mode"] = "moonlight"
    driver = build_driver(bulb.lamp_url())
    try:
        with pytest.raises(DriverError, match="answered with something that is not a Yeelight colour bulb's state"):
            await driver.read_state()
    finally:
        await driver.close()


@pytest.mark.parametrize("url", ["yeelight://192.168.1.50", "yeelight://bulb.local:55443?timeout=5",
                                 "yeelight://[fe80::1]:55443"])
def test_a_yeelight_url_prints_back_exactly(url: str) -> None:
    driver = build_driver(url)
    assert type(driver).__name__ == "YeelightDriver"
    assert driver.url(privacy=False) == driver.url() == url


@pytest.mark.parametrize(("url", "needle"), [
    ("yeelight://", "needs the bulb's address: yeelight://192.168.1.50"),
    ("yeelight://192.168.1.50/light", "takes only an address: yeelight://HOST[:PORT]"),
    ("yeelight://user:pw@192.168.1.50", "takes only an address"),
    ("yeelight://192.168.1.50?music=1", "unknown option 'music' (options: timeout)"),
    ("yeelight://192.168.1.50?timeout=0", "timeout must be a number of seconds from 0 to 120"),
    ("yeelight://192.168.1.50:99999", "the port is not a number from 1 to 65535"),
])
def test_bad_yeelight_urls_name_the_problem(url: str, needle: str) -> None:
    with pytest.raises(LampUrlError, match=needle.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        build_driver(url)


def test_a_bad_url_is_reported_without_its_password() -> None:
    with pytest.raises(LampUrlError) as caught:
        build_driver("yeelight://user:s3cret@192.168.1.50")
    assert "s3cret" not in str(caught.value) and "****" in str(caught.value)
