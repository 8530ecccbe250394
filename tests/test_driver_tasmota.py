"""`tasmota://` through a real Mosquitto broker and `tasmota+http://` on loopback, against a fake Tasmota.

The fake (tests/peers/fake_tasmota.py) answers as the firmware does, and draws its light as the firmware's
light loop does, so a command sequence that would fade or flash on a real device fades or flashes here.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import paho.mqtt.publish as publish
import pytest

from lamplighter.drivers.registry import build_driver
from lamplighter.drivers.tasmota import COMMANDS_PER_SECOND, TasmotaDriver
from lamplighter.errors import DriverError, LampUrlError
from lamplighter.model import Effect, LampState, SystemClock, make_event
from lamplighter.service import Service, SignalAction
from tests.peers.fake_tasmota import FakeTasmota, FakeTasmotaHttp, TasmotaFirmware
from tests.peers.http_fake import most_in_any_window
from tests.peers.lamps import LAMP, RED, eventually, offline_logs, offline_reason, running_lamp
from tests.peers.mosquitto import Mosquitto

pytestmark = pytest.mark.real_time  # services and lamps driving real peers on the real clock

TOPIC = "desk_bulb"
WARM_DIM = [0, 0, 0, 60, 140]  # an RGBCW bulb in colour temperature, warm, at 55 %
RED_CHANNELS = [255, 0, 0, 0, 0]
WEB_PASSWORD = "s3cret-web-pw"


def bulb_firmware(was_on: bool = True) -> TasmotaFirmware:
    """A bulb whose user likes slow fades (Fade ON, Speed 4): alerts must not fade all the same."""
    return TasmotaFirmware(light_channels=5, channels=list(WARM_DIM), power=[was_on], fade=True, speed=4)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    with Mosquitto(tmp_path / "mqtt").start() as started:
        yield started


@pytest.fixture
def bulb(broker: Mosquitto) -> Iterator[FakeTasmota]:
    with FakeTasmota(broker.port, TOPIC, bulb_firmware()) as device:
        yield device


@pytest.fixture
def plug(broker: Mosquitto) -> Iterator[FakeTasmota]:
    """A two-relay plug: relay 1 drives a lamp, relay 2 a siren."""
    with FakeTasmota(broker.port, "hall_plug", TasmotaFirmware(relays=2, light_channels=0)) as device:
        yield device


@pytest.fixture
async def web_bulb() -> AsyncIterator[FakeTasmotaHttp]:
    firmware = bulb_firmware()
    firmware.web_password = WEB_PASSWORD
    async with FakeTasmotaHttp(firmware) as device:
        yield device


def url(broker: Mosquitto, topic: str = TOPIC, options: str = "") -> str:
    return f"tasmota://127.0.0.1:{broker.port}/{topic}?timeout=0.5{options}"


def web_url(device: FakeTasmotaHttp, password: str = WEB_PASSWORD) -> str:
    return f"tasmota+http://admin:{password}@127.0.0.1:{device.port}?timeout=0.5"


def shows(firmware: TasmotaFirmware) -> tuple[bool, list[int]]:
    return firmware.power[-1], list(firmware.channels)


def send_911(service: Service) -> int:
    return service.submit(make_event("911", "payments down", received_at=service.clock.now())).id


async def alert_and_ack(service: Service, firmware: TasmotaFirmware) -> None:
    """A 911 shows red with no fade and the user's fade settings untouched; the ack puts the light back exactly."""
    before = shows(firmware)
    async with service.running():
        alarm = send_911(service)
        await eventually(lambda: shows(firmware) == (True, RED_CHANNELS))
        assert service.acknowledge(alarm, by="alice") is SignalAction.DONE
        await eventually(lambda: shows(firmware) == before)
    assert firmware.changes and not any(change.faded for change in firmware.changes)
    assert (firmware.fade, firmware.speed) == (True, 4)


@pytest.mark.parametrize("was_on", [True, False])
async def test_a_911_turns_the_tasmota_light_red_without_a_fade_and_the_ack_restores_it_exactly(
        broker: Mosquitto, service_factory: Callable[..., Service], was_on: bool) -> None:
    with FakeTasmota(broker.port, TOPIC, bulb_firmware(was_on)) as bulb:
        await alert_and_ack(service_factory(f"lamps: {{{LAMP}: '{url(broker)}'}}\n"), bulb.firmware)
        assert "Backlog0 Speed2 0;Color1 #ff0000;Power1 ON" in [line for _, line in bulb.firmware.commands]


@pytest.mark.parametrize("was_on", [True, False])
async def test_a_911_on_a_plug_switches_its_relay_and_the_ack_switches_it_back(
        plug: FakeTasmota, broker: Mosquitto, service_factory: Callable[..., Service], was_on: bool) -> None:
    plug.firmware.power[:] = [was_on, True]
    service = service_factory(f"lamps: {{{LAMP}: '{url(broker, 'hall_plug', '&relay=1')}'}}\n")
    async with service.running():
        alarm = send_911(service)
        await eventually(lambda: plug.firmware.power == [True, True])
        service.acknowledge(alarm, by="alice")
        await eventually(lambda: plug.firmware.power == [was_on, True])
    assert {line for _, line in plug.firmware.commands} <= {"State", "Backlog0 Power1 ON", "Backlog0 Power1 OFF"}


async def test_an_unacknowledged_911_switches_on_the_siren_relay_and_the_ack_switches_it_off(
        bulb: FakeTasmota, plug: FakeTasmota, broker: Mosquitto, service_factory: Callable[..., Service],
        clock: SystemClock) -> None:
    service = service_factory(f"lamps: {{{LAMP}: '{url(broker)}'}}\n"
                              f"sirens: {{hall: '{url(broker, 'hall_plug', '&relay=2')}'}}\n"
                              "levels:\n  911: {escalate_after: 3s}\n")
    async with service.running():
        alarm = send_911(service)
        await eventually(lambda: shows(bulb.firmware) == (True, RED_CHANNELS))
        assert plug.firmware.power == [False, False]
        await eventually(lambda: plug.firmware.power == [False, True])
        service.acknowledge(alarm, by="alice")
        await eventually(lambda: plug.firmware.power == [False, False])


async def test_tasmota_has_no_native_effects_so_blink_is_drawn_by_the_controller() -> None:
    assert TasmotaDriver.effects == frozenset({Effect.SOLID})


async def test_a_burst_reaches_the_bulb_as_at_most_five_commands_a_second_and_the_latest_wins(
        bulb: FakeTasmota, broker: Mosquitto, tmp_path: Path) -> None:
    colors = [f"#{i:02x}40{255 - i:02x}" for i in range(199)] + ["#0000ff"]
    async with running_lamp(build_driver(url(broker)), tmp_path) as lamp:
        await lamp.burst(colors)
        await eventually(lambda: shows(bulb.firmware) == (True, [0, 0, 255, 0, 0]))
    assert most_in_any_window([at for at, _ in bulb.firmware.commands]) <= COMMANDS_PER_SECOND
    assert len(bulb.firmware.commands) < len(colors) / 4  # coalesced, never replayed


async def test_a_bulb_whose_last_will_says_offline_is_offline_then_restored_when_back(
        bulb: FakeTasmota, broker: Mosquitto, service_factory: Callable[..., Service],
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    before = shows(bulb.firmware)
    service = service_factory(f"lamps: {{{LAMP}: '{url(broker)}'}}\n")
    async with service.running():
        alarm = send_911(service)
        await eventually(lambda: shows(bulb.firmware) == (True, RED_CHANNELS))
        bulb.unplug()
        service.acknowledge(alarm, by="alice")
        await eventually(lambda: not service.lamps[LAMP].online)
        bulb.plug()
        await eventually(lambda: service.lamps[LAMP].online and shows(bulb.firmware) == before)
    assert offline_logs(caplog.records) == (1, 1)


async def test_the_last_will_is_believed_at_once_and_silence_is_offline_after_the_timeout(
        bulb: FakeTasmota, broker: Mosquitto) -> None:
    driver = build_driver(url(broker))
    try:
        assert (await driver.read_state()).on
        bulb.unplug(lwt=False)  # gone, but the broker has not noticed yet
        await offline_reason(driver, "did not answer within 0.5 s")
        bulb.unplug()
        await offline_reason(driver, "its last will says Offline")
    finally:
        await driver.close()


async def test_a_device_that_does_not_know_a_command_is_a_driver_error(plug: FakeTasmota, broker: Mosquitto) -> None:
    driver = build_driver(url(broker, "hall_plug"))  # no relay=N: light commands, to a device without a light
    try:
        with pytest.raises(DriverError, match="does not know a command we sent"):
            await driver.apply(RED)
    finally:
        await driver.close()


async def test_a_custom_fulltopic_is_followed(broker: Mosquitto) -> None:
    with FakeTasmota(broker.port, TOPIC, bulb_firmware(), fulltopic="tasmota/%topic%/%prefix%/") as bulb:
        driver = build_driver(url(broker, options="&fulltopic=tasmota/%25topic%25/%25prefix%25/"))
        try:
            await driver.apply(LampState(on=True, color="#800000"))
            assert shows(bulb.firmware) == (True, [128, 0, 0, 0, 0])
            assert (await driver.read_state()) == LampState(on=True, color="#ff0000", brightness=50)
        finally:
            await driver.close()


@pytest.mark.parametrize("was_on", [True, False])
async def test_over_http_a_911_turns_the_light_red_without_a_fade_and_the_ack_restores_it_exactly(
        service_factory: Callable[..., Service], was_on: bool) -> None:
    firmware = bulb_firmware(was_on)
    firmware.web_password = WEB_PASSWORD
    async with FakeTasmotaHttp(firmware) as device:
        await alert_and_ack(service_factory(f"lamps: {{{LAMP}: '{web_url(device)}'}}\n"), firmware)


async def test_over_http_a_wrong_web_password_is_refused_and_never_shown(
        web_bulb: FakeTasmotaHttp, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    wrong, right = build_driver(web_url(web_bulb, password="wrong-pw")), build_driver(web_url(web_bulb))
    try:
        with pytest.raises(DriverError, match="refused our web password") as caught:
            await wrong.apply(RED)
        assert "wrong-pw" not in str(caught.value)
        await right.apply(RED)
        assert shows(web_bulb.firmware) == (True, RED_CHANNELS)
    finally:
        await wrong.close()
        await right.close()
    assert "wrong-pw" not in caplog.text and WEB_PASSWORD not in caplog.text


async def test_over_http_a_burst_is_paced_and_an_unplugged_device_is_offline_until_back(
        web_bulb: FakeTasmotaHttp, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    colors = [f"#{i:02x}40{255 - i:02x}" for i in range(199)] + ["#0000ff"]
    async with running_lamp(build_driver(web_url(web_bulb)), tmp_path) as lamp:
        await lamp.burst(colors)
        await eventually(lambda: shows(web_bulb.firmware) == (True, [0, 0, 255, 0, 0]))
        web_bulb.unplug()
        lamp.show()
        await eventually(lambda: not lamp.controller.online)
        assert "did not answer within 0.5 s" in lamp.controller.error
        web_bulb.plug()
        await eventually(lambda: lamp.controller.online and shows(web_bulb.firmware) == (True, WARM_DIM))
    assert most_in_any_window([at for at, _ in web_bulb.firmware.commands]) <= COMMANDS_PER_SECOND
    assert web_bulb.most_in_flight == 1
    assert offline_logs(caplog.records) == (1, 1)


@pytest.mark.parametrize(("text", "shown"), [
    ("tasmota://192.168.1.5/desk_bulb", "tasmota://192.168.1.5/desk_bulb"),
    ("tasmota://user:pa55@broker.local:8883/plug_4?relay=2&tls=true&timeout=2",
     "tasmota://****:****@broker.local:8883/plug_4?relay=2&tls=true&timeout=2"),
    ("tasmota://192.168.1.5/strip?fulltopic=tasmota/%25topic%25/%25prefix%25/",
     "tasmota://192.168.1.5/strip?fulltopic=tasmota/%25topic%25/%25prefix%25/"),
    ("tasmota+http://192.168.1.60", "tasmota+http://192.168.1.60"),
    ("tasmota+http://admin:webpw@192.168.1.60:8080?relay=1&timeout=2",
     "tasmota+http://****:****@192.168.1.60:8080?relay=1&timeout=2"),
])
def test_tasmota_urls_print_back_exactly_and_hide_passwords(text: str, shown: str) -> None:
    driver = build_driver(text)
    assert driver.url(privacy=False) == text and driver.url() == shown
    assert build_driver(driver.url(privacy=False)).url(privacy=False) == text


@pytest.mark.parametrize(("text", "needle"), [
    ("tasmota://", "needs the MQTT broker's address"),
    ("tasmota://192.168.1.5", "needs the device's Topic as the path"),
    ("tasmota://192.168.1.5/bulb+", "the topic cannot contain the MQTT wildcards"),
    ("tasmota://192.168.1.5/bulb?relay=0", "relay must be a relay number from 1 to 32"),
    ("tasmota://192.168.1.5/bulb?fulltopic=%25topic%25/", "fulltopic must contain %prefix% and %topic%"),
    ("tasmota://192.168.1.5/bulb?fade=0", "unknown option 'fade'"),
    ("tasmota://192.168.1.5/bulb?tls=on", "tls must be true or false"),
    ("tasmota+http://", "needs the device's address"),
    ("tasmota+http://192.168.1.60/cm", "takes only an address"),
    ("tasmota+http://192.168.1.60?fulltopic=x", "unknown option 'fulltopic' (options: relay, timeout)"),
])
def test_bad_tasmota_urls_name_the_problem(text: str, needle: str) -> None:
    with pytest.raises(LampUrlError, match=needle.replace("+", r"\+").replace("(", r"\(").replace(")", r"\)")):
        build_driver(text)


# ---- the state it tells by itself (issue 13) -----------------------------------------------------


def known(service: Service) -> LampState | None:
    return service.lamps[LAMP].memory.known


async def test_what_the_bulb_tells_keeps_its_state_so_the_first_alert_needs_no_state_read_and_restores_exactly(
        bulb: FakeTasmota, broker: Mosquitto, service_factory: Callable[..., Service]) -> None:
    """Anyone's command (here another MQTT client, as Home Assistant would send it) and the bulb's own button
    are answered on stat/RESULT: the driver merges them, so the alert is the first command the bulb hears."""
    service = service_factory(f"lamps: {{{LAMP}: '{url(broker)}'}}\n")
    async with service.running():
        await eventually(lambda: service.lamps[LAMP].memory.contacted)
        publish.single(f"cmnd/{TOPIC}/Backlog0", "Speed2 0;HsbColor 240,100,40", hostname="127.0.0.1",
                       port=broker.port)
        await eventually(lambda: (state := known(service)) is not None and state.on and state.brightness == 40)
        bulb.press()  # the wall button switches it off: a RESULT with the power only
        await eventually(lambda: (state := known(service)) is not None and not state.on and state.brightness == 40)
        before, heard_before = shows(bulb.firmware), len(bulb.firmware.commands)
        alarm = send_911(service)
        await eventually(lambda: shows(bulb.firmware) == (True, RED_CHANNELS))
        assert bulb.firmware.commands[heard_before][1].startswith("Backlog0 Speed2 0;Color1 #ff0000")  # no State
        service.acknowledge(alarm, by="alice")
        await eventually(lambda: shows(bulb.firmware) == before)  # off, and blue at 40 % for the next switch-on


async def test_the_periodic_state_report_is_believed_and_an_offline_last_will_forgets_the_state(
        bulb: FakeTasmota, broker: Mosquitto, service_factory: Callable[..., Service]) -> None:
    service = service_factory(f"lamps: {{{LAMP}: '{url(broker)}'}}\n")
    async with service.running():
        await eventually(lambda: known(service) is not None)
        bulb.firmware.execute("Dimmer 20")  # changed without a RESULT reaching us (a lost message)
        bulb.tele()
        await eventually(lambda: (state := known(service)) is not None and state.brightness == 20)
        bulb.unplug()
        await eventually(lambda: known(service) is None)  # its last state is not believed: read before an alert
