"""The reconnect loop MQTT sources and lamp drivers share (lamplighter.mqtt), on a real Mosquitto.

Stopping must not hang when a library swallows the cancellation: aiomqtt waits with
`asyncio.wait_for`, which on Python 3.11 can. The callbacks the loop calls are plain
functions, so the swallowing is put where it can happen: inside the library's `subscribe`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from lamplighter import reconnect
from lamplighter.backoff import Backoff
from lamplighter.mqtt import BrokerAddress, MqttLink
from tests.peers.mosquitto import Mosquitto
from tests.test_service import eventually

TOPIC = "lamplighter/test"


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    with Mosquitto(tmp_path / "mqtt").start() as started:
        yield started


def link_to(broker: Mosquitto, received: list[object]) -> MqttLink:
    return MqttLink(BrokerAddress("127.0.0.1", broker.port), lambda: [TOPIC], 0,
                    lambda message: received.append(message.payload), lambda client: None,
                    lambda error, refused: None, Backoff(first=0.05, most=0.2))


async def stop_timed(link: MqttLink) -> float:
    loop = asyncio.get_running_loop()
    started = loop.time()
    await link.stop()
    return loop.time() - started


async def test_a_stopped_link_ends_at_once_while_waiting_for_messages(broker: Mosquitto) -> None:
    received: list[object] = []
    link = link_to(broker, received)
    task = asyncio.create_task(link.run())
    await eventually(lambda: link.client is not None)
    broker.publish(TOPIC, "hello")
    await eventually(lambda: received == [b"hello"])
    assert await stop_timed(link) < 0.5
    assert task.done() and link.client is None


async def test_stop_ends_the_link_when_the_library_swallows_the_first_cancellation(
        broker: Mosquitto, monkeypatch: pytest.MonkeyPatch) -> None:
    subscribing = asyncio.Event()

    async def swallowing_subscribe(self: aiomqtt.Client, *args: Any, **kwargs: Any) -> None:
        subscribing.set()
        with contextlib.suppress(asyncio.CancelledError):  # as asyncio.wait_for can on Python 3.11
            await asyncio.sleep(3600)
        await asyncio.sleep(3600)

    monkeypatch.setattr(aiomqtt.Client, "subscribe", swallowing_subscribe)
    link = link_to(broker, [])
    task = asyncio.create_task(link.run())
    await eventually(subscribing.is_set)
    assert await stop_timed(link) < 0.5  # the cancellation is sent again until it lands
    assert task.done()


async def test_stop_returns_within_its_bound_when_every_cancellation_is_swallowed(
        broker: Mosquitto, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(reconnect, "STOP_WITHIN", 0.3)
    subscribing, released = asyncio.Event(), asyncio.Event()

    async def stubborn_subscribe(self: aiomqtt.Client, *args: Any, **kwargs: Any) -> None:
        subscribing.set()
        while not released.is_set():
            with contextlib.suppress(asyncio.CancelledError):
                await released.wait()

    monkeypatch.setattr(aiomqtt.Client, "subscribe", stubborn_subscribe)
    link = link_to(broker, [])
    task = asyncio.create_task(link.run())
    await eventually(subscribing.is_set)
    assert 0.3 <= await stop_timed(link) < 0.5
    assert not task.done() and "did not stop within 0.3 s" in caplog.text
    released.set()  # the library gives in at last: the link sees its stop flag instead of waiting for messages
    await eventually(task.done)
    assert link.client is None
