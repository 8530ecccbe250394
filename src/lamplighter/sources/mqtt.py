"""Any MQTT publisher (`type: mqtt`): doorbell buttons, Zigbee2MQTT sensors, Home Assistant, scripts.

Each entry under `topics:` maps the messages on one topic filter to events. The payload is
JSON when it parses as JSON, else plain text (a button that publishes `ON`). Fields of the
event are small templates: `{topic}`, `{payload}` (the whole payload) and `{payload.a.b}`
(a field path; list items by number, `{payload.alerts.0.name}`). `when` keeps only the
messages whose fields equal the given values (any of a list); `resolve_when` turns a message
into a `resolved` event, so a contact sensor's `contact: true` ends what `contact: false`
started. Retained messages are old news and are skipped unless `retained: true`.

    sources:
      - type: mqtt
        broker: 192.168.1.10
        topics:
          - {topic: zigbee2mqtt/doorbell, when: {payload.action: single}, level: door, title: Doorbell}
          - {topic: zigbee2mqtt/back_door, level: "912", title: back door open,
             when: {payload.contact: [false, true]}, resolve_when: {payload.contact: true}}

A rule with `do:` instead of `level:` makes a button act on what the lamps show instead of
sending an event: `do: ack` acknowledges the top signal, `do: ack all` every active one,
`do: snooze 30m` hides the top signal for that long (it shows again if still active then).

          - {topic: zigbee2mqtt/desk_button, when: {payload.action: single}, do: ack}
          - {topic: zigbee2mqtt/hue_dimmer, when: {payload.action: off_press_release}, do: snooze 30m}
"""

from __future__ import annotations

import json
import logging
import re
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from lamplighter.model import Clock, format_duration, make_event, parse_duration
from lamplighter.sources.base import SourceSettings, Submit
from lamplighter.sources.mqtt_client import BrokerSettings, BrokerSource, topic_matches
from lamplighter.untrusted import MAX_MESSAGE_BYTES, check_json

log = logging.getLogger(__name__)

_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([^{}]*)\}")
TRUE_WORDS = frozenset({"true", "on", "yes", "1"})
FALSE_WORDS = frozenset({"false", "off", "no", "0"})
REMEMBERED_KEYS = 1024  # keys whose last event was `resolved`, so a repeated "closed" is sent once
MAX_BUTTON_SNOOZE = 7 * 86400.0


class TemplateError(ValueError):
    """A template names a field the message does not have."""


def check_template(template: str) -> str:
    """Raise ValueError unless every placeholder is {topic}, {payload} or {payload.PATH}."""
    for match in _PLACEHOLDER.finditer(template):
        name = match.group(1)
        if name is not None and not _known_root(name):
            raise ValueError(f"unknown placeholder {{{name}}} in {template!r}: use {{topic}}, {{payload}} "
                             "or {payload.field.path}")
    return template


def _known_root(path: str) -> bool:
    return path in ("topic", "payload") or (path.startswith("payload.") and all(path.split(".")[1:]))


def render(template: str, topic: str, payload: Any) -> str:
    """Fill a checked template from one message; TemplateError names a missing field."""
    def fill(match: re.Match[str]) -> str:
        if match.group(1) is None:
            return match.group(0)[0]  # {{ or }}
        return as_text(lookup(match.group(1), topic, payload))
    return _PLACEHOLDER.sub(fill, template)


def lookup(path: str, topic: str, payload: Any) -> Any:
    """The value at `topic`, `payload` or `payload.a.0.b`; TemplateError if it is not there."""
    if path == "topic":
        return topic
    value = payload
    for part in path.split(".")[1:]:
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            raise TemplateError(f"the payload has no {path}")
    return value


def as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value) if isinstance(value, (dict, list)) else str(value)


def equals(actual: Any, expected: Any) -> bool:
    """YAML-friendly equality: `true` matches "ON"/"on"/"yes"; 1 matches "1"; a list means any of."""
    if isinstance(expected, list):
        return any(equals(actual, one) for one in expected)
    if isinstance(expected, bool) and isinstance(actual, str):
        return actual.strip().lower() in (TRUE_WORDS if expected else FALSE_WORDS)
    return as_text(actual) == as_text(expected)


def matches(conditions: Mapping[str, Any], topic: str, payload: Any) -> bool:
    """Every field equals its value; a missing field does not match."""
    try:
        return all(equals(lookup(path, topic, payload), want) for path, want in conditions.items())
    except TemplateError:
        return False


def parse_payload(raw: bytes) -> Any:
    """JSON if it parses, else the text itself; PayloadError if it is too large or nests too deep."""
    check_json(raw, max_bytes=MAX_MESSAGE_BYTES)
    text = raw.decode(errors="replace")
    try:
        return json.loads(text)
    except ValueError:
        return text


@dataclass(frozen=True)
class ButtonAction:
    """What a button press does: acknowledge the top signal (or all), or snooze the top one."""

    verb: Literal["ack", "snooze"]
    everything: bool = False
    seconds: float = 0.0

    def __str__(self) -> str:
        return f"snooze {format_duration(self.seconds)}" if self.verb == "snooze" else \
            "ack all" if self.everything else "ack"


def parse_action(text: str) -> ButtonAction:
    """`ack`, `ack all`, `snooze 30m`; ValueError names what is wrong."""
    words = str(text).strip().lower().split()
    if words in (["ack"], ["acknowledge"]):
        return ButtonAction("ack")
    if words in (["ack", "all"], ["acknowledge", "all"]):
        return ButtonAction("ack", everything=True)
    if len(words) == 2 and words[0] == "snooze":
        seconds = parse_duration(words[1])
        if not 0 < seconds <= MAX_BUTTON_SNOOZE:
            raise ValueError("a snooze lasts longer than 0s and at most 7d")
        return ButtonAction("snooze", seconds=seconds)
    raise ValueError(f"unknown action {text!r}: use ack, ack all, or snooze DURATION (e.g. snooze 30m)")


class TopicRule(BaseModel):
    """How the messages on one topic filter become events (`level:`), or act as a button (`do:`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    topic: str = Field(min_length=1)
    do: ButtonAction | None = None
    level: str | None = Field(default=None, validate_default=True)
    title: str = "{topic}"
    body: str = ""
    key: str = "{topic}"
    sender: str = "{topic}"
    status: str = "firing"
    when: dict[str, Any] = {}
    resolve_when: dict[str, Any] = {}
    retained: bool = False

    @field_validator("do", mode="before")
    @classmethod
    def _action(cls, value: Any) -> Any:
        return value if value is None or isinstance(value, ButtonAction) else parse_action(str(value))

    @field_validator("level")
    @classmethod
    def _level_or_action(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None and "do" in info.data and info.data["do"] is None:  # (a `do` that failed is not in data)
            raise PydanticCustomError("missing", "Field required")
        if value is not None and info.data.get("do") is not None:
            raise ValueError("a rule either sends an event (level:) or acts as a button (do:), not both")
        return None if value is None else check_template(value)

    @field_validator("title", "body", "key", "sender", "status")
    @classmethod
    def _template(cls, value: str) -> str:
        return check_template(value)

    @field_validator("when", "resolve_when")
    @classmethod
    def _paths(cls, value: dict[str, Any]) -> dict[str, Any]:
        for path in value:
            if not _known_root(path):
                raise ValueError(f"unknown field {path!r}: use topic, payload or payload.field.path")
        return value


class MqttSettings(BrokerSettings):
    topics: list[TopicRule] = Field(min_length=1)


class MqttSource(BrokerSource):
    """Subscribes to each rule's topic filter and turns matching messages into events."""

    source_type = "mqtt"
    Settings = MqttSettings

    def __init__(self, name: str, settings: SourceSettings, clock: Clock) -> None:
        super().__init__(name, settings, clock)
        assert isinstance(settings, MqttSettings)
        self.rules = settings.topics
        self._resolved: OrderedDict[str, None] = OrderedDict()

    def topics(self) -> list[str]:
        return list(dict.fromkeys(rule.topic for rule in self.rules))

    def on_message(self, topic: str, payload: bytes, retained: bool, submit: Submit) -> None:
        value = parse_payload(payload)
        for rule in self.rules:
            if topic_matches(rule.topic, topic) and (rule.retained or not retained):
                self._apply(rule, topic, value, submit)

    def _apply(self, rule: TopicRule, topic: str, payload: Any, submit: Submit) -> None:
        if not matches(rule.when, topic, payload):
            return
        if rule.do is not None:
            self._press(rule.do, topic)
            return
        assert rule.level is not None  # a rule without `do` has a level (checked with the settings)
        resolved = bool(rule.resolve_when) and matches(rule.resolve_when, topic, payload)
        status = "resolved" if resolved else render(rule.status, topic, payload).strip().lower()
        key = render(rule.key, topic, payload)
        if status == "resolved" and self._already_resolved(key):
            return
        if status != "resolved":
            self._resolved.pop(key, None)
        submit(make_event(render(rule.level, topic, payload), render(rule.title, topic, payload),
                          body=render(rule.body, topic, payload), sender=render(rule.sender, topic, payload),
                          key=key, status=status, labels={"topic": topic}, source=self.name,
                          received_at=self.clock.now()))

    def _press(self, action: ButtonAction, topic: str) -> None:
        """A button was pressed: acknowledge or snooze what the lamps show."""
        if self.facade is None:
            raise ValueError(f"button {topic} pressed ({action}) but no running service to act on")
        by = f"button {topic}"
        if action.verb == "ack":
            ended = self.facade.acknowledge_showing(by, action.everything)
            log.info("%s (%s): acknowledged %s", by, action, ", ".join(str(s.event_id) for s in ended) or "nothing")
        else:
            snoozed = self.facade.snooze_showing(action.seconds)
            log.info("%s (%s): snoozed %s", by, action, snoozed.event_id if snoozed else "nothing")
        self.health.last_event_at = self.clock.now()

    def _already_resolved(self, key: str) -> bool:
        """True if the last event for `key` was already `resolved`; remembers this one either way."""
        seen = key in self._resolved
        self._resolved[key] = None
        self._resolved.move_to_end(key)
        if len(self._resolved) > REMEMBERED_KEYS:
            self._resolved.popitem(last=False)
        return seen
