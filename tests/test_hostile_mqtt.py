"""Hostile MQTT messages on a real Mosquitto (issue 12, items 3 and 4): the source survives every one.

`"[" * 50000 + "]" * 50000` used to end the source task silently (RecursionError in
json.loads); a lone surrogate used to break the journal for the next message.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from lamplighter.backoff import Backoff
from lamplighter.service import Service
from lamplighter.sources.mqtt_client import BrokerSource
from tests.peers.mosquitto import Mosquitto
from tests.test_service import eventually

DEEP = "[" * 50_000 + "]" * 50_000
RULE = {"topic": "home/alerts", "level": "912", "title": "{payload.msg}", "key": "{payload.msg}"}


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    with Mosquitto(tmp_path / "mqtt").start() as started:
        yield started


def build(service_factory: Callable[..., Service], entry: str, name: str) -> tuple[Service, BrokerSource]:
    service = service_factory(f"sources:\n  - {entry}\n")
    source = service.sources[name]
    assert isinstance(source, BrokerSource)
    source.backoff = Backoff(first=0.05, most=0.2)
    return service, source


def titles(service: Service) -> list[str]:
    return [row.title for row in reversed(service.store.recent_events(100))]


async def test_a_deeply_nested_message_is_refused_and_the_mqtt_source_goes_on(
        service_factory: Callable[..., Service], broker: Mosquitto, caplog: pytest.LogCaptureFixture) -> None:
    service, source = build(service_factory, f"{{type: mqtt, name: home, broker: '{broker.address}', "
                                             f"topics: [{json.dumps(RULE)}]}}", "home")
    async with service.running():
        await eventually(lambda: source.health.connected)
        with caplog.at_level(logging.WARNING):
            for _ in range(3):
                broker.publish("home/alerts", DEEP)
            broker.publish("home/alerts", json.dumps({"msg": "after the attack"}))
            await eventually(lambda: titles(service) == ["after the attack"], timeout=5)
        assert source.health.refused == 3 and "nested deeper than" in source.health.last_refusal
        assert source.health.connected
        logged = [r for r in caplog.records if "nested deeper than" in r.getMessage()]
        assert len(logged) == 1 and logged[0].exc_info is None  # once per kind, no traceback


async def test_a_lone_surrogate_is_stored_and_the_next_message_is_not_lost(
        service_factory: Callable[..., Service], broker: Mosquitto) -> None:
    service, source = build(service_factory, f"{{type: mqtt, name: home, broker: '{broker.address}', "
                                             f"topics: [{json.dumps(RULE)}]}}", "home")
    async with service.running():
        await eventually(lambda: source.health.connected)
        broker.publish("home/alerts", json.dumps({"msg": "truncated emoji \ud83d"}))
        broker.publish("home/alerts", json.dumps({"msg": "next"}))
        await eventually(lambda: titles(service) == ["truncated emoji \ufffd", "next"], timeout=5)
        assert source.health.refused == 0


async def test_frigate_goes_through_the_same_bounded_path(service_factory: Callable[..., Service],
                                                          broker: Mosquitto) -> None:
    service, source = build(service_factory, f"{{type: frigate, broker: '{broker.address}', zones: [porch]}}",
                            "frigate")
    async with service.running():
        await eventually(lambda: source.health.connected)
        broker.publish("frigate/events", DEEP)
        broker.publish("frigate/events", "[]")
        await eventually(lambda: source.health.refused == 2, timeout=5)
        assert "nested deeper than" in source.health.last_refusal or "JSON object" in source.health.last_refusal
        broker.publish("frigate/available", "offline")  # the task still reads messages
        await eventually(lambda: not source.health.connected, timeout=5)
