"""Buttons on MQTT: a press acknowledges or snoozes what the lamps show, through a real Mosquitto.

The payloads are the ones real devices publish: a Zigbee button through Zigbee2MQTT
(`{"action": "single"}`), a Hue dimmer switch through Zigbee2MQTT (`{"action":
"off_press_release"}`), and a Shelly Button1 over its own MQTT (`shellies/ID/input_event/0`,
`{"event": "L", "event_cnt": 3}` for a long press).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from lamplighter.backoff import Backoff
from lamplighter.errors import ConfigError
from lamplighter.model import make_event
from lamplighter.service import Service
from lamplighter.sources import build_sources
from lamplighter.sources.mqtt import MqttSource, parse_action
from tests.conftest import FakeClock
from tests.peers.mosquitto import Mosquitto
from tests.test_service import eventually

DESK_BUTTON = {"topic": "zigbee2mqtt/desk_button", "when": {"payload.action": "single"}, "do": "ack"}
HUE_DIMMER = {"topic": "zigbee2mqtt/hue_dimmer", "when": {"payload.action": "off_press_release"},
              "do": "snooze 30m"}
SHELLY = {"topic": "shellies/shellybutton1-E8DB84D2B7A1/input_event/0", "when": {"payload.event": "L"},
          "do": "ack all"}


@pytest.mark.parametrize(("text", "shown"), [("ack", "ack"), ("Ack all", "ack all"), ("snooze 30m", "snooze 30m"),
                                             ("snooze 90", "snooze 1m30s"), ("acknowledge", "ack")])
def test_actions_are_read_as_written(text: str, shown: str) -> None:
    assert str(parse_action(text)) == shown


@pytest.mark.parametrize(("rule", "path", "message"), [
    ({"topic": "b", "do": "reboot"}, "do", "unknown action 'reboot': use ack, ack all, or snooze DURATION"),
    ({"topic": "b", "do": "snooze soon"}, "do", "not a duration: 'soon'"),
    ({"topic": "b", "do": "snooze 8d"}, "do", "a snooze lasts longer than 0s and at most 7d"),
    ({"topic": "b", "do": "ack", "level": "911"}, "level", "either sends an event (level:) or acts as a button"),
    ({"topic": "b"}, "level", "Field required"),
])
def test_a_bad_button_rule_is_named_with_its_path(rule: dict[str, Any], path: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        build_sources([{"type": "mqtt", "topics": [rule]}], FakeClock())
    problems = dict(caught.value.problems)
    assert message in problems[f"sources.0.topics.0.{path}"], problems


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    with Mosquitto(tmp_path / "mqtt").start() as started:
        yield started


def send(service: Service, level: str, title: str) -> int:
    receipt = service.submit(make_event(level, title, received_at=service.clock.now(), sender=title))
    assert receipt.signal_id is not None
    return receipt.signal_id


def end_reason(service: Service, event_id: int) -> str | None:
    ended = service.store.signal_end(event_id)
    return None if ended is None else ended[1]


async def test_buttons_acknowledge_and_snooze_what_the_lamps_show(
        service_factory: Callable[..., Service], broker: Mosquitto, clock: FakeClock) -> None:
    rules = json.dumps([DESK_BUTTON, HUE_DIMMER, SHELLY])
    service = service_factory("levels: {'911': {hold: until_ack}, '912': {hold: until_ack}, door: {hold: 1h}}\n"
                              f"sources:\n  - {{type: mqtt, name: buttons, broker: '{broker.address}', "
                              f"topics: {rules}}}\n")
    source = service.sources["buttons"]
    assert isinstance(source, MqttSource)
    source.backoff = Backoff(first=0.05, most=0.2)
    async with service.running():
        await eventually(lambda: source.health.connected)
        warning = send(service, "912", "disk 90%")
        outage = send(service, "911", "payments down")

        broker.publish("zigbee2mqtt/desk_button", json.dumps({"action": "double", "linkquality": 120}))  # not ours
        broker.publish("zigbee2mqtt/desk_button", json.dumps({"action": "single", "battery": 97, "linkquality": 120}))
        await eventually(lambda: outage not in service.signals)
        assert end_reason(service, outage) == "acknowledged by button zigbee2mqtt/desk_button"
        assert set(service.signals) == {warning}  # only the top signal: the 911

        broker.publish("zigbee2mqtt/hue_dimmer", json.dumps({"action": "off_press_release", "brightness": 254,
                                                             "action_duration": 0, "battery": 100}))
        await eventually(lambda: service.signals[warning].snoozed_until is not None)
        assert service.signals[warning].snoozed_until == clock.now() + 30 * 60
        assert service.where_words(warning)[0] == "snoozed"

        visitor = send(service, "door", "someone at the door")
        broker.publish("shellies/shellybutton1-E8DB84D2B7A1/input_event/0", json.dumps({"event": "S", "event_cnt": 2}))
        broker.publish("shellies/shellybutton1-E8DB84D2B7A1/input_event/0", json.dumps({"event": "L", "event_cnt": 3}))
        await eventually(lambda: service.signals == {})
        by_shelly = "acknowledged by button shellies/shellybutton1-E8DB84D2B7A1/input_event/0"
        assert end_reason(service, warning) == by_shelly and end_reason(service, visitor) == by_shelly
        assert source.health.refused == 0
        assert service.store.count_events() == 3  # button presses are not events
