"""`z2m://` through a real Mosquitto broker, against a fake Zigbee2MQTT speaking its MQTT API.

The fake (tests/peers/fake_zigbee2mqtt.py) is a bridge with its devices: state, availability, last will.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from lamplighter.drivers import mqtt
from lamplighter.drivers.base import Driver
from lamplighter.drivers.color import to_xy
from lamplighter.drivers.registry import build_driver
from lamplighter.drivers.zigbee2mqtt import MESSAGES_PER_SECOND, Zigbee2MqttDriver
from lamplighter.errors import DeviceOffline, LampUrlError
from lamplighter.model import Effect, SystemClock, make_event
from lamplighter.service import Service, SignalAction
from tests.daemon import free_port
from tests.peers.fake_hue import mirek_xy
from tests.peers.fake_zigbee2mqtt import FakeZigbee2Mqtt
from tests.peers.http_fake import most_in_any_window
from tests.peers.lamps import LAMP, WAIT, eventually, offline_logs, offline_reason, running_lamp, signal
from tests.peers.mosquitto import Mosquitto

pytestmark = pytest.mark.real_time  # services and lamps driving real peers on the real clock

LIGHT = "desk lamp/left"  # a friendly name with a space and a slash
SIREN = "hall siren"
SECRET = "s3cret-broker-pw"
RED = {"x": 0.7006, "y": 0.2993}
LOOKS: dict[str, dict[str, Any]] = {
    "was on, warm white": {"state": "ON", "brightness": 120, "color_mode": "color_temp", "color_temp": 370,
                           "color": mirek_xy(370)},
    "was off, blue": {"state": "OFF", "brightness": 80, "color_mode": "xy", "color": {"x": 0.1532, "y": 0.0475}},
    "was on, hue and saturation": {"state": "ON", "brightness": 200, "color_mode": "hs",
                                   "color": {"hue": 30, "saturation": 90}},
}


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    with Mosquitto(tmp_path / "mqtt").start() as started:
        yield started


@pytest.fixture
def z2m(broker: Mosquitto) -> Iterator[FakeZigbee2Mqtt]:
    with FakeZigbee2Mqtt(broker.port) as bridge:
        yield bridge


def url(broker: Mosquitto, name: str = LIGHT, **options: str) -> str:
    query = urlencode({"timeout": "0.5", **options})
    return f"z2m://lamplighter:{SECRET}@127.0.0.1:{broker.port}/{name.replace(' ', '%20')}?{query}"


def look(state: dict[str, Any]) -> dict[str, Any]:
    """What exact restore must bring back: power, the colour in its mode, the brightness of a lamp that is on."""
    kept = ["state", "color_mode", "color_temp" if state["color_mode"] == "color_temp" else "color"]
    return {key: state[key] for key in kept + (["brightness"] if state["state"] == "ON" else [])}


def send_911(service: Service) -> int:
    return service.submit(make_event("911", "payments down", received_at=service.clock.now())).id


def shows_red(z2m: FakeZigbee2Mqtt) -> bool:
    state = z2m.state(LIGHT)
    return bool(state["state"] == "ON" and state["color"] == RED and state["brightness"] == 254)


async def read_when_back(driver: Driver) -> None:
    """Read the device as soon as the driver knows it is back."""
    async with asyncio.timeout(WAIT):
        while True:
            try:
                assert (await driver.read_state()).on
                return
            except DeviceOffline:
                await asyncio.sleep(0.02)


@pytest.mark.parametrize("before", LOOKS.values(), ids=LOOKS.keys())
async def test_a_911_turns_the_zigbee_light_red_at_once_and_the_ack_restores_it_exactly(
        z2m: FakeZigbee2Mqtt, broker: Mosquitto, service_factory: Callable[..., Service],
        before: dict[str, Any]) -> None:
    z2m.add_light(LIGHT, **before)
    restored = look(z2m.state(LIGHT))
    service = service_factory(f"lamps: {{{LAMP}: '{url(broker)}'}}\n")
    async with service.running():
        alarm = send_911(service)
        await eventually(lambda: shows_red(z2m))
        assert z2m.sets(LIGHT)[-1].body == {"state": "ON", "color": {"hex": "#ff0000"}, "brightness": 254,
                                            "transition": 0}
        assert service.acknowledge(alarm, by="alice") is SignalAction.DONE
        await eventually(lambda: look(z2m.state(LIGHT)) == restored)
        assert z2m.sets(LIGHT)[-1].body["transition"] == 0


async def test_blink_is_drawn_by_the_controller_because_zigbee2mqtt_effects_play_only_once(
        z2m: FakeZigbee2Mqtt, broker: Mosquitto, tmp_path: Path) -> None:
    assert Zigbee2MqttDriver.effects == frozenset({Effect.SOLID})
    z2m.add_light(LIGHT, state="OFF")
    async with running_lamp(build_driver(url(broker)), tmp_path) as lamp:
        lamp.show(signal("#ff0000", effect=Effect.BLINK))
        await eventually(lambda: [c.body["state"] for c in z2m.sets(LIGHT)][-3:] == ["ON", "OFF", "ON"])
    assert all("effect" not in c.body and c.body["transition"] == 0 for c in z2m.sets(LIGHT))


async def test_a_burst_reaches_zigbee_as_one_change_a_second_and_ends_on_the_latest_colour(
        z2m: FakeZigbee2Mqtt, broker: Mosquitto, tmp_path: Path) -> None:
    z2m.add_light(LIGHT)
    colors = [f"#{i:02x}00{255 - i:02x}" for i in range(199)] + ["#00ff00"]
    x, y = to_xy("#00ff00")
    async with running_lamp(build_driver(url(broker)), tmp_path) as lamp:
        await lamp.burst(colors)
        await eventually(lambda: z2m.state(LIGHT)["color"] == {"x": x, "y": y})
    assert most_in_any_window([c.at for c in z2m.commands]) <= MESSAGES_PER_SECOND
    assert len(z2m.sets(LIGHT)) <= 5  # 1.5 s of changes at one a second: coalesced, never replayed


async def test_a_light_that_drops_off_the_zigbee_network_is_offline_then_restored_when_back(
        z2m: FakeZigbee2Mqtt, broker: Mosquitto, service_factory: Callable[..., Service],
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    z2m.add_light(LIGHT, **LOOKS["was on, warm white"])
    restored = look(z2m.state(LIGHT))
    service = service_factory(f"lamps: {{{LAMP}: '{url(broker)}'}}\n")
    async with service.running():
        alarm = send_911(service)
        await eventually(lambda: shows_red(z2m))
        z2m.unplug(LIGHT)
        service.acknowledge(alarm, by="alice")
        await eventually(lambda: not service.lamps[LAMP].online)
        assert service.lamp_views()[0].state is None
        z2m.plug(LIGHT)
        await eventually(lambda: service.lamps[LAMP].online and look(z2m.state(LIGHT)) == restored)
    assert offline_logs(caplog.records) == (1, 1)
    assert SECRET not in caplog.text


async def test_zigbee2mqtts_own_word_that_a_device_or_the_bridge_is_offline_is_believed_at_once(
        z2m: FakeZigbee2Mqtt, broker: Mosquitto) -> None:
    z2m.add_light(LIGHT)
    driver = build_driver(url(broker))
    try:
        assert (await driver.read_state()).on
        z2m.unplug(LIGHT)
        await offline_reason(driver, "Zigbee2MQTT reports the device offline")
        z2m.plug(LIGHT)
        await read_when_back(driver)
        z2m.stop()  # as a crash: the broker publishes the bridge's last will
        reason = await offline_reason(driver, "Zigbee2MQTT is offline")
        assert reason.startswith("z2m://****:****@127.0.0.1")
    finally:
        await driver.close()


async def test_a_device_zigbee2mqtt_does_not_answer_for_is_offline_after_the_timeout(broker: Mosquitto) -> None:
    driver = build_driver(url(broker))  # no Zigbee2MQTT on this broker
    try:
        with pytest.raises(DeviceOffline, match=r"did not answer within 0\.5 s"):
            await driver.read_state()
    finally:
        await driver.close()


async def test_a_broker_that_is_not_there_is_named_without_its_password() -> None:
    driver = build_driver(f"z2m://lamplighter:{SECRET}@127.0.0.1:{free_port()}/desk?timeout=0.5")
    try:
        with pytest.raises(DeviceOffline, match="cannot reach the MQTT broker of z2m://") as caught:
            await driver.read_state()
        assert SECRET not in str(caught.value)
    finally:
        await driver.close()


async def test_after_the_broker_restarts_the_lamp_reconnects_and_shows_what_it_should(
        z2m: FakeZigbee2Mqtt, broker: Mosquitto, service_factory: Callable[..., Service],
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    z2m.add_light(LIGHT, **LOOKS["was off, blue"])
    restored = look(z2m.state(LIGHT))
    service = service_factory(f"lamps: {{{LAMP}: '{url(broker)}'}}\n")
    async with service.running():
        alarm = send_911(service)
        await eventually(lambda: shows_red(z2m))
        broker.stop()
        service.acknowledge(alarm, by="alice")
        await eventually(lambda: not service.lamps[LAMP].online)
        broker.start()  # the same port; retained messages are gone (persistence false), the bridge announces again
        await eventually(lambda: service.lamps[LAMP].online and look(z2m.state(LIGHT)) == restored)
    assert offline_logs(caplog.records) == (1, 1)
    assert "MQTT broker 127.0.0.1" in caplog.text and SECRET not in caplog.text


async def test_an_unacknowledged_911_sounds_the_zigbee_siren_and_the_ack_silences_it(
        z2m: FakeZigbee2Mqtt, broker: Mosquitto, service_factory: Callable[..., Service], clock: SystemClock) -> None:
    z2m.add_light(LIGHT)
    z2m.add_siren(SIREN)
    service = service_factory(f"lamps: {{{LAMP}: '{url(broker)}'}}\n"
                              f"sirens: {{hall: '{url(broker, SIREN, warning='emergency', duration='600')}'}}\n"
                              "levels:\n  911: {escalate_after: 3s}\n")
    async with service.running():
        alarm = send_911(service)
        await eventually(lambda: shows_red(z2m))
        assert SIREN not in z2m.warnings  # it waits for an acknowledgement first
        await eventually(lambda: SIREN in z2m.warnings)
        assert z2m.warnings[SIREN] == {"mode": "emergency", "level": "very_high", "strobe": True, "duration": 600}
        assert service.acknowledge(alarm, by="alice") is SignalAction.DONE
        await eventually(lambda: z2m.warnings[SIREN] == {"mode": "stop"})


async def test_lamps_on_one_broker_share_one_connection(z2m: FakeZigbee2Mqtt, broker: Mosquitto) -> None:
    z2m.add_light("left")
    z2m.add_light("right")
    drivers = [build_driver(url(broker, name)) for name in ("left", "right")]
    for driver in drivers:
        assert (await driver.read_state()).on
    assert mqtt.connections() == [f"127.0.0.1:{broker.port}"]
    for driver in drivers:
        await driver.close()
    assert mqtt.connections() == []


@pytest.mark.parametrize(("text", "shown", "kind"), [
    ("z2m://192.168.1.5/desk_lamp", "z2m://192.168.1.5/desk_lamp", "Zigbee2MqttDriver"),
    ("z2m://user:pa55@broker.local:1884/Living%20room/ceiling?base_topic=z2m&timeout=3&tls=true",
     "z2m://****:****@broker.local:1884/Living%20room/ceiling?base_topic=z2m&timeout=3&tls=true", "Zigbee2MqttDriver"),
    ("z2m://192.168.1.5/hall_siren?warning=emergency&duration=600",
     "z2m://192.168.1.5/hall_siren?warning=emergency&duration=600", "Zigbee2MqttSirenDriver"),
])
def test_z2m_urls_print_back_exactly_and_hide_the_broker_login(text: str, shown: str, kind: str) -> None:
    driver = build_driver(text)
    assert type(driver).__name__ == kind
    assert driver.url(privacy=False) == text and driver.url() == shown
    assert build_driver(driver.url(privacy=False)).url(privacy=False) == text


@pytest.mark.parametrize(("text", "needle"), [
    ("z2m://", "needs the MQTT broker's address"),
    ("z2m://192.168.1.5", "needs the device's friendly name as the path"),
    ("z2m://192.168.1.5/lamps/+", "the friendly name cannot contain the MQTT wildcards"),
    ("z2m://192.168.1.5/desk?transition=1", "unknown option 'transition'"),
    ("z2m://192.168.1.5/desk?base_topic=", "needs a base_topic"),
    ("z2m://192.168.1.5/desk?tls=yes", "tls must be true or false"),
    ("z2m://192.168.1.5/desk?timeout=never", "timeout must be a number of seconds"),
    ("z2m://192.168.1.5/siren?warning=loud", "warning must be one of burglar, fire, emergency"),
    ("z2m://192.168.1.5/siren?warning=fire&duration=0", "duration must be whole seconds from 1 to 65535"),
    ("z2m://192.168.1.5/desk?duration=60", "duration is for sirens, with warning=MODE"),
])
def test_bad_z2m_urls_name_the_problem(text: str, needle: str) -> None:
    with pytest.raises(LampUrlError, match=needle.replace("+", r"\+")):
        build_driver(text)


def test_a_bad_z2m_url_is_reported_without_the_broker_password() -> None:
    with pytest.raises(LampUrlError) as caught:
        build_driver(f"z2m://user:{SECRET}@broker/desk?colour=red")
    assert SECRET not in str(caught.value) and "****" in str(caught.value)


async def test_the_state_topic_keeps_the_state_so_the_first_alert_is_sent_without_a_get_and_restores_exactly(
        z2m: FakeZigbee2Mqtt, broker: Mosquitto, service_factory: Callable[..., Service]) -> None:
    """Issue 13: Zigbee2MQTT publishes every change; the snapshot comes from that, not from a /get in front."""
    z2m.add_light(LIGHT)
    service = service_factory(f"lamps: {{{LAMP}: '{url(broker)}'}}\n")
    async with service.running():
        await eventually(lambda: service.lamps[LAMP].memory.contacted)  # its first read is done
        z2m.set(LIGHT, state="ON", brightness=60, color_mode="color_temp", color_temp=370)  # the wall remote
        restored = look(z2m.state(LIGHT))
        await eventually(lambda: service.lamps[LAMP].memory.known is not None
                         and service.lamps[LAMP].memory.known.brightness == round(60 * 100 / 254))
        before = len(z2m.commands)
        alarm = send_911(service)
        await eventually(lambda: shows_red(z2m))
        after = [c.kind for c in z2m.commands[before:] if c.device == LIGHT]
        assert after[:1] == ["set"], after  # the alert is the first thing the device hears: no /get in front
        service.acknowledge(alarm, by="alice")
        await eventually(lambda: look(z2m.state(LIGHT)) == restored)


async def test_a_device_zigbee2mqtt_calls_offline_is_read_before_the_next_alert(
        z2m: FakeZigbee2Mqtt, broker: Mosquitto, service_factory: Callable[..., Service]) -> None:
    z2m.add_light(LIGHT)
    service = service_factory(f"lamps: {{{LAMP}: '{url(broker)}'}}\n")
    async with service.running():
        await eventually(lambda: service.lamps[LAMP].memory.known is not None)
        z2m.unplug(LIGHT)
        await eventually(lambda: service.lamps[LAMP].memory.known is None)  # its last state is not believed
