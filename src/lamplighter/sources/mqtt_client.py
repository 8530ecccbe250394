"""The MQTT connection shared by the sources that subscribe to a broker (Frigate, generic MQTT).

A `BrokerSource` keeps one connection (lamplighter.mqtt's `MqttLink`, the loop the MQTT lamp
drivers use too): it subscribes to the source's topics after every connect, hands every
message to `on_message`, and when the connection fails, for whatever reason, reports the
source disconnected and reconnects with backoff. A bad message is logged and skipped; it
never stops the source.
"""

from __future__ import annotations

import logging
from abc import abstractmethod
from typing import TYPE_CHECKING

from pydantic import SecretStr, field_validator

from lamplighter.backoff import Backoff
from lamplighter.model import Clock
from lamplighter.mqtt import MQTT_PORT, MQTTS_PORT, BrokerAddress, MqttLink
from lamplighter.sources.base import Source, SourceHealth, SourceSettings, Submit

if TYPE_CHECKING:
    import aiomqtt

log = logging.getLogger(__name__)

SUBSCRIPTIONS_QOS = 1


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

    def address(self) -> BrokerAddress:
        host, port = split_broker(self.broker, MQTTS_PORT if self.tls else MQTT_PORT)
        password = self.password.get_secret_value() if self.password else ""
        return BrokerAddress(host, port, self.username or "", password, self.tls)


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
        address = self.broker_settings.address()
        link = MqttLink(address, self.topics, SUBSCRIPTIONS_QOS, lambda message: self._dispatch(message, submit),
                        lambda _client: self.on_connected(submit),
                        lambda error, _refused: self.on_disconnected(f"MQTT broker {address}: {error}", submit),
                        self.backoff)
        await link.run()

    @property
    def broker_settings(self) -> BrokerSettings:
        assert isinstance(self.settings, BrokerSettings)
        return self.settings

    def _dispatch(self, message: aiomqtt.Message, submit: Submit) -> None:
        payload = message.payload if isinstance(message.payload, bytes) else str(message.payload).encode()
        try:
            self.on_message(message.topic.value, payload, message.retain, submit)
        except Exception as exc:  # no message may end the source
            self.refuse(f"a message on {message.topic.value}", exc)
