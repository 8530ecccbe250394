"""One MQTT connection that keeps itself up: the reconnect loop of the MQTT sources and lamp drivers.

`MqttLink` connects to a broker with aiomqtt, subscribes to the current topics after every
connect (so retained messages arrive again) and hands every message to a callback. When
the connection fails it reports why (`refused` when the broker turned down our login),
waits with the shared backoff and connects again. Any other exception (a bug in a callback,
a surprise in the library) is logged with its traceback (the same one again is not) and
handled the same way: nothing that happens on the connection ends it.

    link = MqttLink(BrokerAddress("127.0.0.1", 1883), topics=lambda: ["frigate/events"], qos=1,
                    on_message=handle, on_connected=up, on_lost=down, backoff=Backoff())
    task = asyncio.create_task(link.run())
    ...
    await link.stop()

The hub and the room agents use the same loop with a persistent MQTT 5 session (`Session`:
a fixed client id, clean start off, a session expiry, so QoS 1 messages published while a
room was away wait for it at the broker), a will message, and TLS with a client certificate.

The loop itself, and how it stops without depending on a cancellation being delivered
(aiomqtt waits with `asyncio.wait_for`, which on Python 3.11 can swallow one), is the one
reconnect loop of lamplighter/reconnect.py.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from lamplighter.backoff import Backoff
from lamplighter.reconnect import Reconnecting

log = logging.getLogger(__name__)

MQTT_PORT = 1883
MQTTS_PORT = 8883
KEEPALIVE_SECONDS = 30
KEEPALIVE_LEAST = 2  # a shorter one mistakes a busy machine's pause for a dead connection
REFUSED_LOGIN = frozenset({4, 5, 134, 135})  # CONNACK codes: bad user name or password, not authorised
NO_DELAY = ((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),)  # a small message goes out now, not after an ACK

OnMessage = Callable[[aiomqtt.Message], None]
OnConnected = Callable[[aiomqtt.Client], None]
OnLost = Callable[[str, bool], None]  # (what went wrong, whether the broker refused our login)


@dataclass(frozen=True)
class Session:
    """A persistent MQTT 5 session: the broker keeps our subscriptions and queues QoS 1 messages
    for `expiry` seconds while we are away (clean start off)."""

    client_id: str
    expiry: int


@dataclass(frozen=True)
class TlsFiles:
    """Our own certificate authority (else the system's) and a client certificate (else none)."""

    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""


@dataclass(frozen=True)
class BrokerAddress:
    """Where a broker is and how we log in (no user: anonymous)."""

    host: str
    port: int
    user: str = ""
    password: str = field(default="", repr=False)
    tls: bool = False
    session: Session | None = None  # None: a clean MQTT 3.1.1 session each time (the sources' way)
    will: aiomqtt.Will | None = None  # published by the broker when our connection dies
    tls_files: TlsFiles = TlsFiles()
    keepalive: int = KEEPALIVE_SECONDS  # seconds; see keepalive_within

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"

    def client(self) -> aiomqtt.Client:
        """A new client for this broker; TLS verifies its certificate against the system's authorities."""
        session = self.session
        if session is None:
            return aiomqtt.Client(self.host, self.port, username=self.user or None, password=self.password or None,
                                  keepalive=self.keepalive, will=self.will, tls_context=self._tls_context())
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = session.expiry
        return aiomqtt.Client(self.host, self.port, username=self.user or None, password=self.password or None,
                              keepalive=self.keepalive, will=self.will, tls_context=self._tls_context(),
                              identifier=session.client_id, protocol=aiomqtt.ProtocolVersion.V5,
                              clean_start=False, properties=properties, socket_options=NO_DELAY)

    def _tls_context(self) -> ssl.SSLContext | None:
        if not self.tls:
            return None
        files = self.tls_files
        context = ssl.create_default_context(cafile=files.ca_file or None)
        if files.cert_file:
            context.load_cert_chain(files.cert_file, files.key_file or None)
        return context


class MqttLink(Reconnecting):
    """A connection to one broker that reconnects by itself until stopped."""

    def __init__(self, address: BrokerAddress, topics: Callable[[], Iterable[str]], qos: int,
                 on_message: OnMessage, on_connected: OnConnected, on_lost: OnLost, backoff: Backoff) -> None:
        super().__init__(f"MQTT broker {address}", backoff)
        self.address = address
        self.client: aiomqtt.Client | None = None  # set as soon as connected, before the topics are subscribed
        self._topics = topics
        self._qos = qos
        self._on_message = on_message
        self._on_connected = on_connected
        self._on_lost = on_lost
        self._up = asyncio.Event()  # set while connected with every topic subscribed; cleared with `client`
        self._last_unexpected = ""  # the unexpected error last logged with its traceback

    async def connection(self) -> aiomqtt.Client:
        """The client, once connected with every topic subscribed; waits as long as that takes."""
        while not self._up.is_set() or self.client is None:
            await self._up.wait()
        return self.client

    async def _session(self) -> None:
        """One connection, from connect to loss; every failure but a cancellation is reported, not raised."""
        try:
            async with self.address.client() as client:
                self.client = client  # from now on a new topic is subscribed by its owner at once ...
                for topic in list(self._topics()):  # ... and these are renewed
                    await client.subscribe(topic, qos=self._qos)
                self._backoff.reset()
                self._up.set()
                self._on_connected(client)
                await self._dispatch(client)
        except aiomqtt.MqttError as exc:
            self._lost(str(exc) or type(exc).__name__, _refused(exc))
        except Exception as exc:  # a bug must not end a connection that sources and lamps depend on
            self._log_unexpected(exc)
            self._lost(type(exc).__name__, refused=False)
        finally:
            self._up.clear()
            self.client = None

    async def _dispatch(self, client: aiomqtt.Client) -> None:
        """Hand every message to the callback until the connection breaks (MqttError) or the link stops."""
        stopped = asyncio.ensure_future(self._stop.wait())
        try:
            while not self._stopping():
                message = asyncio.ensure_future(anext(client.messages))
                try:
                    await asyncio.wait({message, stopped}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    message.cancel()  # still waiting: stopped or cancelled (done already: no effect)
                if message.done():
                    self._on_message(message.result())
        finally:
            stopped.cancel()

    def _lost(self, error: str, refused: bool) -> None:
        if not self._stopping():
            self._on_lost(error, refused)

    def _log_unexpected(self, exc: Exception) -> None:
        kind = f"{type(exc).__name__}: {exc}"
        if kind != self._last_unexpected:
            self._last_unexpected = kind
            log.error("MQTT broker %s: unexpected error (reconnecting with backoff)", self.address, exc_info=exc)


def keepalive_within(seconds: float) -> int:
    """An MQTT keepalive that finds a dead connection (a silent network: no reset, no error) within about
    `seconds`: our client gives it up after two keepalives without a byte from the broker, the broker
    (and with it the will) after one and a half without one from us. Between 2 and 30 s."""
    return max(KEEPALIVE_LEAST, min(KEEPALIVE_SECONDS, int(seconds // 2)))


def _refused(exc: aiomqtt.MqttError) -> bool:
    """Whether the broker refused our login (rather than being unreachable)."""
    if not isinstance(exc, aiomqtt.MqttCodeError):
        return False
    code = getattr(exc.rc, "value", exc.rc)  # a paho ReasonCode (MQTT 5) or a plain MQTT 3 number
    return code in REFUSED_LOGIN
