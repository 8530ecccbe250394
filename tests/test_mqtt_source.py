"""The generic MQTT source: templates, conditions and topic filters as tables, then publishers on Mosquitto."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from lamplighter.backoff import Backoff
from lamplighter.errors import ConfigError, EventError
from lamplighter.model import Event, Outcome
from lamplighter.service import Service
from lamplighter.sources import build_sources
from lamplighter.sources.mqtt import MqttSource, TemplateError, equals, render
from lamplighter.sources.mqtt_client import split_broker, topic_matches
from tests.conftest import START, FakeClock
from tests.peers.mosquitto import Mosquitto
from tests.test_service import eventually

ALERT = {"alert": {"name": "disk full", "host": "db-2"}, "items": [{"id": 7}], "ok": False, "n": 3}


@pytest.mark.parametrize(("template", "expected"), [
    ("{topic}", "home/alerts"),
    ("{payload.alert.name} on {payload.alert.host}", "disk full on db-2"),
    ("item {payload.items.0.id}", "item 7"),
    ("{payload.ok}/{payload.n}", "false/3"),
    ("{payload.alert}", '{"name": "disk full", "host": "db-2"}'),
    ("{{literal}} {payload.n}", "{literal} 3"),
])
def test_templates(template: str, expected: str) -> None:
    assert render(template, "home/alerts", ALERT) == expected


@pytest.mark.parametrize("template", ["{payload.missing}", "{payload.items.3.id}", "{payload.alert.name.x}"])
def test_a_missing_field_is_an_error_naming_it(template: str) -> None:
    with pytest.raises(TemplateError, match="the payload has no payload"):
        render(template, "t", ALERT)


@pytest.mark.parametrize(("actual", "expected", "same"), [
    ("ON", True, True), ("on", True, True), ("OFF", True, False), ("OFF", False, True),
    (False, False, True), (False, "false", True), (1, "1", True), (1.5, 1.5, True),
    ("single", ["single", "double"], True), ("long", ["single", "double"], False), (None, "", True),
])
def test_yaml_friendly_equality(actual: Any, expected: Any, same: bool) -> None:
    assert equals(actual, expected) is same


@pytest.mark.parametrize(("topic_filter", "topic", "hit"), [
    ("a/b", "a/b", True), ("a/b", "a/c", False), ("a/+", "a/b", True), ("a/+", "a/b/c", False),
    ("a/#", "a", True), ("a/#", "a/b/c", True), ("#", "a/b", True), ("+/+", "a/b", True),
    ("#", "$SYS/broker", False), ("$SYS/#", "$SYS/broker", True), ("a/b", "a", False),
])
def test_topic_filters(topic_filter: str, topic: str, hit: bool) -> None:
    assert topic_matches(topic_filter, topic) is hit


@pytest.mark.parametrize(("value", "host", "port"), [
    ("mqtt.local", "mqtt.local", 1883), ("10.0.0.2:1884", "10.0.0.2", 1884), ("[::1]:1884", "::1", 1884),
    ("::1", "::1", 1883), ("host:x", "host", -1),
])
def test_broker_addresses(value: str, host: str, port: int) -> None:
    assert split_broker(value, 1883) == (host, port)


def test_settings_are_checked_with_their_path() -> None:
    with pytest.raises(ConfigError) as caught:
        build_sources([{"type": "mqtt", "topics": [{"topic": "a", "title": "{title}"}, {"topic": "b", "level": "door",
                                                    "when": {"action": "single"}}]}], FakeClock())
    problems = dict(caught.value.problems)
    assert problems["sources.0.topics.0.level"] == "Field required"
    assert problems["sources.0.topics.0.title"].startswith("unknown placeholder {title}")
    assert problems["sources.0.topics.1.when"].startswith("unknown field 'action'")


# ---- messages to events, without a broker ----------------------------------------------------------


def source(*rules: dict[str, Any]) -> tuple[MqttSource, list[Event]]:
    [built] = build_sources([{"type": "mqtt", "name": "home", "topics": list(rules)}], FakeClock()).values()
    assert isinstance(built, MqttSource)
    return built, []


def deliver(src: MqttSource, sent: list[Event], topic: str, payload: Any, retained: bool = False) -> list[Event]:
    raw = payload if isinstance(payload, str) else json.dumps(payload)
    before = len(sent)
    src.on_message(topic, raw.encode(), retained, sent.append)  # type: ignore[arg-type]
    return sent[before:]


DOORBELL = {"topic": "home/doorbell", "when": {"payload": "ON"}, "level": "door", "title": "Doorbell"}
CONTACT = {"topic": "zigbee2mqtt/+", "level": "912", "title": "{topic} open", "key": "{topic}",
           "when": {"payload.contact": [True, False]}, "resolve_when": {"payload.contact": True}}


def test_a_doorbell_button_publishing_on() -> None:
    src, sent = source(DOORBELL)
    [event] = deliver(src, sent, "home/doorbell", "ON")
    assert (event.level, event.title, event.key, event.sender, event.source) == (
        "door", "Doorbell", "home/doorbell", "home/doorbell", "home")
    assert event.labels == {"topic": "home/doorbell"} and event.received_at == START
    assert deliver(src, sent, "home/doorbell", "OFF") == []
    assert deliver(src, sent, "home/doorbell/battery", "ON") == []


def test_a_contact_sensor_fires_on_open_and_resolves_once_on_close() -> None:
    src, sent = source(CONTACT)
    opened = deliver(src, sent, "zigbee2mqtt/back_door", {"contact": False, "battery": 90})
    closed = deliver(src, sent, "zigbee2mqtt/back_door", {"contact": True, "battery": 90})
    battery_report = deliver(src, sent, "zigbee2mqtt/back_door", {"contact": True, "battery": 89})
    no_contact = deliver(src, sent, "zigbee2mqtt/bridge", {"state": "online"})
    reopened = deliver(src, sent, "zigbee2mqtt/back_door", {"contact": False, "battery": 89})
    assert [(e.status.value, e.key, e.title) for e in opened + closed] == [
        ("firing", "zigbee2mqtt/back_door", "zigbee2mqtt/back_door open"),
        ("resolved", "zigbee2mqtt/back_door", "zigbee2mqtt/back_door open")]
    assert battery_report == [] and no_contact == []
    assert [e.status.value for e in reopened] == ["firing"]


def test_a_json_alert_maps_level_title_key_and_status_from_its_fields() -> None:
    src, sent = source({"topic": "ha/alerts", "level": "{payload.severity}", "title": "{payload.title}",
                        "key": "{payload.id}", "status": "{payload.status}", "body": "from {payload.host}"})
    [event] = deliver(src, sent, "ha/alerts", {"severity": "911", "title": "freezer warm", "id": "fz",
                                              "status": "Resolved", "host": "kitchen"})
    assert (event.level, event.title, event.key, event.status.value, event.body) == (
        "911", "freezer warm", "fz", "resolved", "from kitchen")
    with pytest.raises(TemplateError):
        deliver(src, sent, "ha/alerts", {"severity": "911"})
    with pytest.raises(EventError, match="status"):
        deliver(src, sent, "ha/alerts", {"severity": "911", "title": "t", "id": "x", "status": "bad", "host": "h"})


def test_retained_messages_are_old_news_unless_asked_for() -> None:
    src, sent = source(DOORBELL, {**DOORBELL, "topic": "home/gate", "retained": True})
    assert deliver(src, sent, "home/doorbell", "ON", retained=True) == []
    assert len(deliver(src, sent, "home/gate", "ON", retained=True)) == 1


# ---- through a real broker -------------------------------------------------------------------------


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    with Mosquitto(tmp_path / "mqtt").start() as started:
        yield started


def outcomes(service: Service) -> list[tuple[str, str, str]]:
    return [(row.level, row.status, row.outcome) for row in reversed(service.store.recent_events(100))]


async def test_publishers_on_a_real_broker(service_factory: Callable[..., Service], broker: Mosquitto) -> None:
    broker.publish("home/doorbell", "ON", retain=True)  # a stale press from yesterday
    rules = json.dumps([DOORBELL, CONTACT])
    entry = f"{{type: mqtt, name: home, broker: '{broker.address}', topics: {rules}}}"
    service = service_factory(f"sources:\n  - {entry}\n")
    source = service.sources["home"]
    assert isinstance(source, MqttSource)
    source.backoff = Backoff(first=0.05, most=0.2)
    async with service.running():
        await eventually(lambda: source.health.connected)
        broker.publish("home/doorbell", "ON")
        await eventually(lambda: outcomes(service) == [("door", "firing", Outcome.SHOWN)])
        broker.publish("zigbee2mqtt/back_door", json.dumps({"contact": False}))
        broker.publish("zigbee2mqtt/back_door", json.dumps({"contact": True}))
        broker.publish("zigbee2mqtt/back_door", "not json, no contact field")  # skipped
        await eventually(lambda: len(outcomes(service)) == 3)
        assert outcomes(service)[1:] == [("912", "firing", Outcome.SHOWN), ("912", "resolved", Outcome.RESOLVED)]
        broker.stop()
        await eventually(lambda: not source.health.connected)
        broker.start()
        await eventually(lambda: source.health.connected)
        broker.publish("zigbee2mqtt/back_door", json.dumps({"contact": False}))
        await eventually(lambda: len(outcomes(service)) == 4)


async def test_the_source_outlives_an_unexpected_error_in_a_handler(broker: Mosquitto, monkeypatch: pytest.MonkeyPatch,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    [src] = build_sources([{"type": "mqtt", "name": "home", "broker": broker.address, "topics": [DOORBELL]}],
                          FakeClock()).values()
    assert isinstance(src, MqttSource)
    src.backoff = Backoff(first=0.05, most=0.2)
    handle = src.on_message

    def buggy(topic: str, payload: bytes, retained: bool, submit: Any) -> None:
        if payload == b"BUG":
            raise RuntimeError("a bug in a handler")
        handle(topic, payload, retained, submit)

    monkeypatch.setattr(src, "on_message", buggy)
    sent: list[Event] = []
    task = asyncio.create_task(src.run(sent.append))  # type: ignore[arg-type]
    try:
        await eventually(lambda: src.health.connected)
        broker.publish("home/doorbell", "BUG")
        await eventually(lambda: "a bug in a handler" in caplog.text and src.health.refused == 1)
        assert src.health.connected  # refused and counted; the source goes on
        broker.publish("home/doorbell", "ON")
        await eventually(lambda: [event.title for event in sent] == ["Doorbell"])
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert caplog.text.count("Traceback") == 1
