"""The MQTT connection shared by the sources that subscribe to a broker (Frigate, generic MQTT).

A `BrokerSource` connects with aiomqtt, subscribes to its topics, hands every message to
`on_message`, and on any broker error reports itself disconnected and reconnects with
exponential backoff (1 s doubling to 60 s, back to 1 s after a good connection). A bad
message is logged and skipped; it never stops the source.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from abc import abstractmethod
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr, field_validator

from lamplighter.backoff import Backoff
from lamplighter.model import Clock
from lamplighter.sources.base import Source, SourceHealth, SourceSettings, Submit

if TYPE_CHECKING:
    import aiomqtt

log = logging.getLogger(__name__)

MQTT_PORT = 1883
MQTTS_PORT = 8883
KEEPALIVE_SECONDS = 30


class BrokerSettings(SourceSettings):
    """Where the broker is: `broker: HOST` or `HOST:PORT` (1883, or 8883 with `tls: true`)."""

    broker: str = "127.0.0.1"
    username: str | None = None
    password: SecretStr | None = None
    tls: bool = False

    @field_validator("broker")
    @classmethod
    def _check_broker(cls, value: str) -> str:
        host, port = split_broker(value, MQTT_PORT)
        if not host or not 0 < port < 65536:
            raise ValueError(f"must be HOST or HOST:PORT, not {value!r}")
        return value

    def address(self) -> tuple[str, int]:
        return split_broker(self.broker, MQTTS_PORT if self.tls else MQTT_PORT)


def split_broker(value: str, default_port: int) -> tuple[str, int]:
    """`host`, `host:1884`, `[::1]:1884` -> (host, port); a port that is not a number gives -1."""
    text = value.strip().removeprefix("mqtt://").removeprefix("mqtts://")
    host, sep, port = text.rpartition(":")
    if not sep or (host.count(":") and not host.endswith("]")):  # no port, or a bare IPv6 address
        return text.strip("[]"), default_port
    return host.strip("[]"), int(port) if port.isdigit() else -1


def topic_matches(topic_filter: str, topic: str) -> bool:
    """MQTT filter matching: `+` is one level, a final `#` the rest (or nothing); `$SYS/...` needs its own filter."""
    wanted, levels = topic_filter.split("/"), topic.split("/")
    if topic.startswith("$") and wanted[0] in ("+", "#"):
        return False
    for index, part in enumerate(wanted):
        if part == "#":
            return True
        if index >= len(levels) or part not in ("+", levels[index]):
            return False
    return len(wanted) == len(levels)


class BrokerSource(Source):
    """A source that lives on one MQTT subscription; subclasses say what to subscribe and what to do."""

    def __init__(self, name: str, settings: SourceSettings, clock: Clock) -> None:
        super().__init__(name, settings, clock)
        self.backoff = Backoff()
        self.health = SourceHealth(connected=False, error="not connected to the broker yet")

    @abstractmethod
    def topics(self) -> list[str]:
        """Topic filters to subscribe to (after every connect)."""

    @abstractmethod
    def on_message(self, topic: str, payload: bytes, retained: bool, submit: Submit) -> None:
        """Handle one message; a ValueError or TypeError for a payload that makes no sense is logged."""

    def on_connected(self, submit: Submit) -> None:
        self.mark_connected()

    def on_disconnected(self, error: str, submit: Submit) -> None:
        self.mark_disconnected(error)

    async def run(self, submit: Submit) -> None:
        import aiomqtt  # here, not at the top: a daemon without MQTT sources does not pay for it

        settings = self.broker_settings
        host, port = settings.address()
        while True:
            try:
                async with aiomqtt.Client(host, port, **self._client_options()) as client:
                    for topic in self.topics():
                        await client.subscribe(topic, qos=1)
                    self.backoff.reset()
                    self.on_connected(submit)
                    async for message in client.messages:
                        self._dispatch(message, submit)
            except aiomqtt.MqttError as exc:
                self.on_disconnected(f"MQTT broker {host}:{port}: {exc}", submit)
            await asyncio.sleep(self.backoff.next())

    @property
    def broker_settings(self) -> BrokerSettings:
        assert isinstance(self.settings, BrokerSettings)
        return self.settings

    def _client_options(self) -> dict[str, Any]:
        settings = self.broker_settings
        password = settings.password.get_secret_value() if settings.password else None
        return {"username": settings.username, "password": password, "keepalive": KEEPALIVE_SECONDS,
                "tls_context": ssl.create_default_context() if settings.tls else None}

    def _dispatch(self, message: aiomqtt.Message, submit: Submit) -> None:
        payload = message.payload if isinstance(message.payload, bytes) else str(message.payload).encode()
        try:
            self.on_message(message.topic.value, payload, message.retain, submit)
        except Exception as exc:  # no message may end the source
            self.refuse(f"a message on {message.topic.value}", exc)
