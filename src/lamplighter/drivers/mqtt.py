"""MQTT plumbing the MQTT-reached drivers share (Zigbee2MQTT, Tasmota): one connection per broker.

Every lamp on the same broker (same address, login and TLS) shares one connection, opened
when the first of them needs it and closed with the last. The connection keeps itself up
(lamplighter.mqtt's `MqttLink`, the loop the MQTT sources use too): when the broker goes
away it reconnects with backoff and renews every subscription, so retained messages (a
device's availability, its last state) arrive again.

A driver talks to its device through an `MqttDevice`, the MQTT twin of `HttpDevice`:

    device = MqttDevice(broker_address(url), driver.url(), timeout=5.0, limit=RateLimit(2))
    state = await device.inbox("zigbee2mqtt/desk")              # subscribed; retained messages arrive
    reply = await device.request("zigbee2mqtt/desk/get", '{"state": ""}', state)  # the next message
    await device.publish("zigbee2mqtt/hall/set", '{"warning": {"mode": "stop"}}')

Commands are published with QoS 1 (the broker acknowledges them) and the device's answers
are subscribed with QoS 0, as Home Assistant does: the answer itself is the end-to-end
acknowledgement, one lost is a timeout like any other, and on Mosquitto with its default
settings a QoS 1 subscription added a steady 45 ms to every answer. One exchange with a
device is in flight at a time, under the device's rate limit. Errors name the lamp by its
redacted URL and never carry the broker password:

    DriverError          the broker refused our login
    └── DeviceOffline    the broker cannot be reached, or the device did not answer in time

The URL parts the MQTT drivers share: `USER:PASSWORD@` is the broker login, the port is
1883 (8883 with `tls=true`, which verifies the broker's certificate against the system's
trusted authorities).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from typing import TypeVar
from urllib.parse import unquote

import aiomqtt

from lamplighter.backoff import Backoff
from lamplighter.drivers.base import LampUrl
from lamplighter.drivers.pacing import RateLimit
from lamplighter.drivers.shared import SharedHosts
from lamplighter.errors import DeviceOffline, DriverError, LampUrlError
from lamplighter.mqtt import MQTT_PORT, MQTTS_PORT, BrokerAddress, MqttLink

log = logging.getLogger(__name__)

T = TypeVar("T")

TLS = "tls"
RECENT = 16  # messages an inbox keeps for a waiter that looks for a particular one
COMMANDS_QOS = 1  # the broker acknowledges every command (a siren's only acknowledgement)
ANSWERS_QOS = 0  # a lost answer is a timeout anyway; QoS 1 cost every answer ~45 ms on a default Mosquitto
WILDCARDS = ("+", "#")


def broker_address(url: LampUrl) -> BrokerAddress:
    """The broker of an MQTT lamp URL: its host, port, login and `tls` option (lamps with equal ones share it)."""
    tls = tls_option(url)
    return BrokerAddress(url.host.strip("[]"), url.port or (MQTTS_PORT if tls else MQTT_PORT), unquote(url.user),
                         unquote(url.password), tls)


def tls_option(url: LampUrl) -> bool:
    """The `tls` option: `true` or `false` (the default)."""
    text = url.param(TLS, "false")
    if text not in ("true", "false"):
        raise LampUrlError(url.text(), f"tls must be true or false, not {text!r}")
    return text == "true"


def topic_name(url: LampUrl, what: str, text: str) -> str:
    """`text` checked as a part of a topic: MQTT wildcards cannot be in a topic we publish to."""
    if any(wildcard in text for wildcard in WILDCARDS):
        raise LampUrlError(url.text(), f"{what} cannot contain the MQTT wildcards + or #: {text!r}")
    return text


class Inbox:
    """The messages on one topic: the latest one (retained ones included), and a wait for the next live ones."""

    def __init__(self) -> None:
        self.count = 0
        self._recent: deque[tuple[int, bytes, bool]] = deque(maxlen=RECENT)
        self._waiters: list[asyncio.Future[None]] = []
        self._listeners: list[Callable[[bytes | None], None]] = []

    def listen(self, listener: Callable[[bytes | None], None]) -> None:
        """Call `listener` with every message from now on (the latest one at once), and None whenever the
        broker connection is lost (what the topic said may have changed meanwhile)."""
        self._listeners.append(listener)
        if self.latest is not None:
            listener(self.latest)

    def lost(self) -> None:
        for listener in self._listeners:
            listener(None)

    @property
    def latest(self) -> bytes | None:
        return self._recent[-1][1] if self._recent else None

    def deliver(self, payload: bytes, retained: bool = False) -> None:
        self.count += 1
        self._recent.append((self.count, payload, retained))
        for listener in self._listeners:
            listener(payload)
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def next(self, after: int, accept: Callable[[bytes], bool]) -> bytes:
        """The first live message after the `after`th that `accept` takes, waiting for it as long as it takes.

        A retained message is the broker's copy of an old one (sent because we just subscribed),
        never a device's answer.
        """
        while True:
            for number, payload, retained in self._recent:
                if number > after and not retained and accept(payload):
                    return payload
            after = self.count
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            await waiter


class Broker:
    """One connection to one broker, shared by every lamp on it; it reconnects by itself."""

    def __init__(self, address: BrokerAddress) -> None:
        self.address = address
        self.error = "not connected yet"
        self.refused = False  # the broker refused our login
        self._inboxes: dict[str, Inbox] = {}
        self._subscribers: Counter[str] = Counter()
        self._down_logged = False
        self._link = MqttLink(address, lambda: self._subscribers, ANSWERS_QOS, self._dispatch, self._connected,
                              self._lost, Backoff())
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._link.run(), name=f"MQTT broker {self.address}")

    async def stop(self) -> None:
        await self._link.stop()

    async def connection(self) -> aiomqtt.Client:
        """The client, once connected with every subscription renewed; waits as long as that takes."""
        return await self._link.connection()

    async def subscribe(self, topic: str) -> Inbox:
        """The inbox of `topic`, subscribed now if connected, else at the next connect."""
        self._subscribers[topic] += 1
        inbox = self._inboxes.setdefault(topic, Inbox())
        client = self._link.client
        if client is not None and self._subscribers[topic] == 1:
            with contextlib.suppress(aiomqtt.MqttError):  # lost meanwhile: the reconnect subscribes it
                await client.subscribe(topic, qos=ANSWERS_QOS)
        return inbox

    async def unsubscribe(self, topic: str) -> None:
        self._subscribers[topic] -= 1
        if self._subscribers[topic] > 0:
            return
        del self._subscribers[topic], self._inboxes[topic]
        client = self._link.client
        if client is not None:
            with contextlib.suppress(aiomqtt.MqttError):
                await client.unsubscribe(topic)

    def _connected(self, client: aiomqtt.Client) -> None:
        self.error, self.refused = "", False
        if self._down_logged:
            log.warning("MQTT broker %s: connected again", self.address)
        self._down_logged = False

    def _lost(self, error: str, refused: bool) -> None:
        self.error, self.refused = error, refused
        for inbox in self._inboxes.values():
            inbox.lost()
        if not self._down_logged:
            log.warning("MQTT broker %s: %s (reconnecting with backoff)", self.address, self.error)
        self._down_logged = True

    def _dispatch(self, message: aiomqtt.Message) -> None:
        inbox = self._inboxes.get(message.topic.value)
        if inbox is not None:
            payload = message.payload
            inbox.deliver(payload if isinstance(payload, bytes) else str(payload).encode(), message.retain)


def _stop_broker(broker: Broker) -> Awaitable[None]:
    return broker.stop()


BROKERS: SharedHosts[BrokerAddress, Broker] = SharedHosts(_stop_broker)


def connections() -> list[str]:
    """The brokers this event loop holds a connection to (HOST:PORT), for diagnostics."""
    return [str(address) for address in BROKERS.hosts()]


class MqttDevice:
    """A device reached through a broker: its subscriptions, one exchange at a time, its rate limit.

    `name` is how messages call the device (its redacted URL). The broker connection is
    taken on first use, so a driver built only to check a URL opens nothing.
    """

    def __init__(self, address: BrokerAddress, name: str, timeout: float, limit: RateLimit) -> None:
        self.name = name
        self.timeout = timeout
        self._address = address
        self._limit = limit
        self._lock = asyncio.Lock()
        self._broker: Broker | None = None
        self._inboxes: dict[str, Inbox] = {}

    async def inbox(self, topic: str) -> Inbox:
        """The messages on `topic` (subscribed on first use)."""
        if topic not in self._inboxes:
            self._inboxes[topic] = await self._use().subscribe(topic)
        return self._inboxes[topic]

    async def publish(self, topic: str, payload: str) -> None:
        """Publish to the device; DeviceOffline when the broker cannot take it in time."""
        async with self._lock:
            await self._timed(self._use().connection())  # first: the rate limit counts sends, not waits
            await self._limit.wait()
            await self._timed(self._send(topic, payload))

    async def request(self, topic: str, payload: str, reply: Inbox,
                      accept: Callable[[bytes], bool] = lambda _: True) -> bytes:
        """Publish, then wait for the device's next message on `reply` that `accept` takes."""
        async with self._lock:
            await self._timed(self._use().connection())
            await self._limit.wait()
            after = reply.count
            return await self._timed(self._exchange(topic, payload, reply, after, accept))

    async def close(self) -> None:
        if self._broker is not None:
            broker, self._broker = self._broker, None
            for topic in self._inboxes:
                await broker.unsubscribe(topic)
            self._inboxes.clear()
            await BROKERS.release(self._address)

    def _use(self) -> Broker:
        if self._broker is None:
            self._broker = BROKERS.acquire(self._address, lambda: Broker(self._address))
            self._broker.start()
        return self._broker

    async def _exchange(self, topic: str, payload: str, reply: Inbox, after: int,
                        accept: Callable[[bytes], bool]) -> bytes:
        await self._send(topic, payload)
        return await reply.next(after, accept)

    async def _send(self, topic: str, payload: str) -> None:
        client = await self._use().connection()
        try:
            await client.publish(topic, payload, qos=COMMANDS_QOS, timeout=self.timeout)
        except aiomqtt.MqttError as exc:
            raise DeviceOffline(f"lost the MQTT broker of {self.name} ({exc})") from None

    async def _timed(self, work: Awaitable[T]) -> T:
        """Run `work` within the timeout; when it runs out, say whether the broker or the device was silent."""
        try:
            async with asyncio.timeout(self.timeout):
                return await work
        except TimeoutError:
            raise self._silence() from None

    def _silence(self) -> DriverError:
        broker = self._use()
        if broker.refused:
            return DriverError(f"the MQTT broker of {self.name} refused our login ({broker.error})")
        if broker.error:
            return DeviceOffline(f"cannot reach the MQTT broker of {self.name} ({broker.error})")
        return DeviceOffline(f"{self.name} did not answer within {self.timeout:g} s")
