"""`hass://` against a real Home Assistant 2024.3.3 on loopback, with its demo lights and sirens.

HA starts once for this module (about 1.5 s; the first start of a new venv installs
packages). Each test sets the demo entity it uses through HA's own REST API first, and
reads the result back the same way, or from HA's event bus over its websocket.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from lamplighter.drivers.base import Driver
from lamplighter.drivers.color import from_hsv, to_rgb
from lamplighter.drivers.hass import HassDriver, HassLightDriver, HassSirenDriver
from lamplighter.drivers.registry import build_driver
from lamplighter.errors import DeviceOffline, DriverError, LampUrlError
from lamplighter.model import LampState, make_event
from lamplighter.service import Service, SignalAction
from tests.daemon import Daemon
from tests.peers.homeassistant import Event, HomeAssistant
from tests.peers.http_fake import most_in_any_window
from tests.peers.lamps import LAMP, RED, eventually, offline_logs, running_lamp
from tests.test_e2e import cli, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.real_time]

BED_LIGHT = "light.bed_light"  # colour (hs) and colour temperature, effects rainbow and none
KITCHEN_LIGHT = "light.kitchen_lights"
SIREN = "siren.siren"  # on and off only
LOUD_SIREN = "siren.siren_with_all_features"  # tones fire and alarm, volume, duration
SHOWN = ("color_mode", "brightness", "hs_color", "color_temp_kelvin", "rgb_color", "effect")
RESTART_WAIT = 60.0  # HA stops in about 2 s and starts in about 1.5 s, and retries back off


@pytest.fixture(scope="module")
def ha(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HomeAssistant]:
    with HomeAssistant(tmp_path_factory.mktemp("hass")).start() as started:
        yield started


def shown(ha: HomeAssistant, entity_id: str) -> dict[str, Any]:
    """What an exact restore must bring back: on or off, and what a light shows in its own terms."""
    state = ha.state(entity_id)
    return {"state": state["state"], **{k: state["attributes"].get(k) for k in SHOWN}}


def is_red(ha: HomeAssistant) -> bool:
    attributes = ha.state(BED_LIGHT)["attributes"]
    return bool(attributes["rgb_color"] == [255, 0, 0] and attributes["brightness"] == 255)


def shows_color(ha: HomeAssistant, color: str) -> bool:
    """HA reports the bed light in this colour (give or take the one step HA's hue-saturation round trip costs)."""
    rgb = ha.state(BED_LIGHT)["attributes"]["rgb_color"] or [-9, -9, -9]
    return all(abs(a - b) <= 1 for a, b in zip(rgb, to_rgb(color), strict=True))


def light_calls(events: list[Event], entity_id: str = BED_LIGHT) -> list[Event]:
    return [e for e in events if e.data["domain"] == "light" and e.data["service_data"].get("entity_id") == entity_id]


def service_with(service_factory: Callable[..., Service], url: str) -> Service:
    return service_factory(f"lamps: {{{LAMP}: '{url}'}}\n")


def send_911(service: Service) -> int:
    return service.submit(make_event("911", "payments down", received_at=service.clock.now())).id


async def alert_and_ack(ha: HomeAssistant, service_factory: Callable[..., Service]) -> list[Event]:
    """A 911 on the bed light until HA shows it red, then its ack until HA shows the light as before;
    the light service calls HA received meanwhile."""
    before = shown(ha, BED_LIGHT)
    service = service_with(service_factory, ha.lamp_url(BED_LIGHT))
    async with ha.events("call_service") as calls, service.running():
        alarm = send_911(service)
        await eventually(lambda: is_red(ha))
        assert service.acknowledge(alarm, by="alice") is SignalAction.DONE
        await eventually(lambda: shown(ha, BED_LIGHT) == before)
        await eventually(lambda: len(light_calls(calls)) >= 2)  # the events may trail the state
    return light_calls(calls)


@pytest.mark.parametrize("was_on", [True, False])
async def test_a_911_turns_the_light_red_at_once_and_the_ack_restores_it_exactly(
        ha: HomeAssistant, service_factory: Callable[..., Service], was_on: bool) -> None:
    ha.call("light", "turn_on", entity_id=BED_LIGHT, hs_color=[30, 60], brightness=120, effect="rainbow")
    if not was_on:
        ha.call("light", "turn_off", entity_id=BED_LIGHT)
    alert, restore = [c.data for c in await alert_and_ack(ha, service_factory)]
    assert alert["service"] == "turn_on"
    assert alert["service_data"] == {"entity_id": BED_LIGHT, "rgb_color": [255, 0, 0], "brightness": 255,
                                     "effect": "none", "transition": 0}  # the running effect stopped
    expected = {"entity_id": BED_LIGHT, "hs_color": [30, 60], "brightness": 120, "effect": "rainbow",
                "transition": 0} if was_on else {"entity_id": BED_LIGHT, "transition": 0}
    assert (restore["service"], restore["service_data"]) == ("turn_on" if was_on else "turn_off", expected)


async def test_a_light_at_a_colour_temperature_comes_back_to_its_kelvin_not_an_rgb_look_alike(
        ha: HomeAssistant, service_factory: Callable[..., Service]) -> None:
    ha.call("light", "turn_on", entity_id=BED_LIGHT, color_temp_kelvin=2700, brightness=77)
    before = shown(ha, BED_LIGHT)
    await alert_and_ack(ha, service_factory)
    after = shown(ha, BED_LIGHT)
    assert (after["color_mode"], after["color_temp_kelvin"], after["brightness"]) == (
        "color_temp", before["color_temp_kelvin"], 77)
    assert abs(after["color_temp_kelvin"] - 2700) <= 5  # HA keeps mireds: 2700 K is 370 mired, 2702 K


async def test_a_burst_reaches_ha_as_a_few_calls_within_its_pace_and_the_latest_colour_wins(
        ha: HomeAssistant, tmp_path: Path) -> None:
    ha.call("light", "turn_off", entity_id=BED_LIGHT)
    colors = [from_hsv(number * 7 % 360, 1.0) for number in range(200)]
    async with ha.events("call_service") as calls:
        async with running_lamp(build_driver(ha.lamp_url(BED_LIGHT)), tmp_path) as lamp:
            await lamp.burst(colors)
            await eventually(lambda: shows_color(ha, colors[-1]))
        await asyncio.sleep(0.2)  # the last events over the websocket
    sent = light_calls(calls)
    assert sent[-1].data["service_data"]["rgb_color"] == list(to_rgb(colors[-1]))
    assert len(sent) < len(colors) / 4  # coalesced, never replayed
    assert most_in_any_window([c.fired for c in sent]) <= 10


async def test_ha_stopping_mid_alert_puts_the_lamp_offline_once_and_a_restarted_ha_shows_the_alert_again(
        ha: HomeAssistant, service_factory: Callable[..., Service], monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    ha.call("light", "turn_on", entity_id=BED_LIGHT, color_temp_kelvin=2700, brightness=77)
    before = shown(ha, BED_LIGHT)
    service = service_with(service_factory, ha.lamp_url(BED_LIGHT, timeout="1"))
    try:
        async with service.running():
            alarm = send_911(service)
            await eventually(lambda: is_red(ha))
            await asyncio.to_thread(ha.stop)
            await eventually(lambda: not service.lamps[LAMP].online)
            error = service.lamp_views()[0].error
            assert "hass://****@127.0.0.1" in error and ha.token not in error
            await asyncio.to_thread(ha.start)  # the demo light starts off: the alert is gone from it
            await eventually(lambda: service.lamps[LAMP].online and is_red(ha), timeout=RESTART_WAIT)
            service.acknowledge(alarm, by="alice")
            await eventually(lambda: shown(ha, BED_LIGHT) == before)
    finally:
        if ha.process is None or ha.process.poll() is not None:
            ha.start()
    assert offline_logs(caplog.records) == (1, 1)


async def test_a_wrong_token_is_a_driver_error_naming_401_and_never_the_token(ha: HomeAssistant) -> None:
    driver = build_driver(ha.lamp_url(BED_LIGHT, token="not-the-s3cret-token"))
    try:
        for attempt in (driver.read_state, lambda: driver.apply(RED)):
            with pytest.raises(DriverError, match=r"refused our credentials \(HTTP 401\)") as caught:
                await attempt()
            assert "s3cret" not in str(caught.value) and "hass://****@127.0.0.1" in str(caught.value)
    finally:
        await driver.close()


async def test_an_entity_ha_does_not_have_is_a_driver_error_naming_it_even_for_a_command(ha: HomeAssistant) -> None:
    driver = build_driver(ha.lamp_url("light.no_such_lamp"))
    try:
        for attempt in (driver.read_state, lambda: driver.apply(RED)):  # HA would take the command, do nothing
            with pytest.raises(DriverError, match=r"/light\.no_such_lamp answered HTTP 404"):
                await attempt()
    finally:
        await driver.close()


async def test_an_entity_ha_reports_unavailable_makes_the_lamp_offline(ha: HomeAssistant) -> None:
    ha.set_state(KITCHEN_LIGHT, "unavailable")  # what HA shows while the device behind it does not answer
    driver = build_driver(ha.lamp_url(KITCHEN_LIGHT))
    try:
        with pytest.raises(DeviceOffline, match=r"Home Assistant reports light\.kitchen_lights unavailable"):
            await driver.read_state()
    finally:
        await driver.close()


async def test_a_siren_sounds_with_its_tone_duration_and_volume_and_stops(ha: HomeAssistant) -> None:
    ha.call("siren", "turn_off", entity_id=LOUD_SIREN)
    driver = build_driver(ha.lamp_url(LOUD_SIREN, tone="alarm", duration="30", volume="0.8"))
    try:
        assert await driver.read_state() == LampState(on=False)
        async with ha.events("call_service") as calls:
            await driver.apply(RED)
            assert ha.state(LOUD_SIREN)["state"] == "on" and (await driver.read_state()) == RED
            await driver.apply(LampState(on=False))
            assert ha.state(LOUD_SIREN)["state"] == "off"
            await eventually(lambda: len(calls) == 2)
        assert [(c.data["service"], c.data["service_data"]) for c in calls] == [
            ("turn_on", {"entity_id": LOUD_SIREN, "tone": "alarm", "duration": 30, "volume_level": 0.8}),
            ("turn_off", {"entity_id": LOUD_SIREN})]
    finally:
        await driver.close()


async def test_a_siren_without_the_configured_tone_still_sounds_and_says_why(
        ha: HomeAssistant, caplog: pytest.LogCaptureFixture) -> None:
    ha.call("siren", "turn_off", entity_id=LOUD_SIREN)
    driver = build_driver(ha.lamp_url(LOUD_SIREN, tone="foghorn"))
    try:
        with caplog.at_level(logging.WARNING):
            await driver.apply(RED)
        assert ha.state(LOUD_SIREN)["state"] == "on"
        assert "has no tone 'foghorn' (it has alarm, fire): sounding its default tone" in caplog.text
    finally:
        await driver.close()


def test_an_unacknowledged_911_sounds_the_ha_siren_after_its_delay_and_ack_stops_it(
        ha: HomeAssistant, daemon: Callable[..., Daemon], monkeypatch: pytest.MonkeyPatch) -> None:
    ha.call("siren", "turn_off", entity_id=SIREN)
    monkeypatch.setenv("HASS_TOKEN", ha.token)
    d = daemon(f"lamps: {{desk: 'virtual://desk'}}\n"
               f"sirens: {{hall: 'hass://${{HASS_TOKEN}}@127.0.0.1:{ha.port}/{SIREN}'}}\n"
               "levels: {'911': {escalate_after: 2s}}\n")
    sent = cli(d, "send", "911", "payments down")
    assert sent.stdout.strip() == "event 1: shown — On the lamp now", sent.stderr
    assert ha.state(SIREN)["state"] == "off"  # not before its delay
    wait_for(lambda: ha.state(SIREN)["state"] == "on", timeout=15)
    acked = cli(d, "ack", "1", "--by", "alice")
    assert acked.stdout.strip() == "event 1 acknowledged by alice", acked.stderr
    wait_for(lambda: ha.state(SIREN)["state"] == "off", timeout=10)
    assert ha.token not in d.log_path.read_text()


URLS = [
    # (URL, as printed with privacy, driver class)
    ("hass://eyJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJ4In0.c2lnbmF0dXJl@homeassistant.local:8123/light.office",
     "hass://****@homeassistant.local:8123/light.office", HassLightDriver),
    ("hass://TOKEN@10.0.0.5/light.living_room_2?timeout=3", "hass://****@10.0.0.5/light.living_room_2?timeout=3",
     HassLightDriver),
    ("hass://TOKEN@homeassistant.local:8123/siren.hall?tone=alarm&duration=30&volume=0.8",
     "hass://****@homeassistant.local:8123/siren.hall?tone=alarm&duration=30&volume=0.8", HassSirenDriver),
    ("hass+https://TOKEN@ha.example.org/siren.hall", "hass+https://****@ha.example.org/siren.hall", HassSirenDriver),
]


@pytest.mark.parametrize(("url", "printed", "kind"), URLS)
def test_a_hass_url_prints_back_exactly_and_hides_the_token(url: str, printed: str, kind: type[HassDriver]) -> None:
    driver = build_driver(url)
    assert type(driver) is kind
    assert driver.url(privacy=False) == url
    assert driver.url() == printed


@pytest.mark.parametrize(("url", "needle"), [
    ("hass://homeassistant.local:8123/light.office", "needs an access token"),
    ("hass://s3cret:pa55@homeassistant.local/light.office", "the token goes alone before the @"),
    ("hass://s3cret@homeassistant.local:8123", "path must be a light or siren entity id"),
    ("hass://s3cret@homeassistant.local:8123/switch.heater", "path must be a light or siren entity id"),
    ("hass://s3cret@homeassistant.local:8123/light.Office", "path must be a light or siren entity id"),
    ("hass://s3cret@homeassistant.local:8123/light.office?tone=alarm", "unknown option 'tone' (options: timeout)"),
    ("hass://s3cret@homeassistant.local/siren.hall?volume=2", "volume must be a number from 0 to 1, not '2'"),
    ("hass://s3cret@homeassistant.local/siren.hall?duration=1.5", "duration must be a whole number of seconds"),
    ("hass://s3cret@homeassistant.local/siren.hall?duration=soon", "duration must be a whole number of seconds"),
    ("hass://s3cret@homeassistant.local/siren.hall?timeout=0", "timeout must be a number of seconds"),
])
def test_a_bad_hass_url_names_the_problem_without_the_token(url: str, needle: str) -> None:
    with pytest.raises(LampUrlError) as caught:
        build_driver(url)
    assert needle in str(caught.value)
    assert "s3cret" not in str(caught.value) and "pa55" not in str(caught.value)


async def test_the_websocket_keeps_the_state_so_the_first_alert_is_sent_without_a_read_and_restores_exactly(
        ha: HomeAssistant, service_factory: Callable[..., Service]) -> None:
    """Issue 13: HA's websocket tells every change of the lamp's entity; the snapshot comes from it."""
    ha.call("light", "turn_on", entity_id=BED_LIGHT, color_temp_kelvin=2700, brightness=90)
    service = service_with(service_factory, ha.lamp_url(BED_LIGHT))
    async with service.running():
        await eventually(lambda: service.lamps[LAMP].memory.contacted)  # the first read is done
        requests = spy_requests(service.lamps[LAMP].driver)
        ha.call("light", "turn_on", entity_id=BED_LIGHT, hs_color=[200, 70], brightness=33)  # someone, in HA
        before = shown(ha, BED_LIGHT)
        await eventually(lambda: service.lamps[LAMP].memory.known is not None
                         and service.lamps[LAMP].memory.known.brightness == round(33 * 100 / 255))
        alarm = send_911(service)
        await eventually(lambda: is_red(ha))
        assert [method for method, _ in requests][:1] == ["POST"], requests  # the alert first: no read in front
        service.acknowledge(alarm, by="alice")
        await eventually(lambda: shown(ha, BED_LIGHT) == before)


def spy_requests(driver: Driver) -> list[tuple[str, str]]:
    """The REST requests the driver sends to HA from now on (method, URL); they still go to HA."""
    device = driver._ha.device  # type: ignore[attr-defined]
    sent: list[tuple[str, str]] = []
    request = device.request

    async def spied(method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        sent.append((method, url))
        return await request(method, url, *args, **kwargs)

    device.request = spied
    return sent
