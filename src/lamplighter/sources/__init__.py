"""Sources: where events come from besides the HTTP API (mail, chat, webhooks, MQTT, cameras).

A source type is registered by its `type` name: the built-ins below, and plug-in packages
through the entry-point group `lamplighter.sources` (name -> Source subclass).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cache
from importlib.metadata import entry_points
from typing import Any

from lamplighter.errors import ConfigError
from lamplighter.model import Clock, load_class
from lamplighter.sources.base import Source

ENTRY_POINT_GROUP = "lamplighter.sources"
RESERVED_NAMES = frozenset({"api", "watchdog"})  # the HTTP API's and the dead-man's switch's own events

# type name -> "module:Class". A module is imported only when a source of its type is
# configured, so start-up stays fast and a missing optional library affects only its source.
BUILT_IN: dict[str, str | type[Source]] = {
    "alertmanager": "lamplighter.sources.webhooks:AlertmanagerHook",
    "grafana": "lamplighter.sources.webhooks:GrafanaHook",
    "buildbot": "lamplighter.sources.webhooks:BuildbotHook",
    "webhook": "lamplighter.sources.webhooks:GenericHook",
    "imap": "lamplighter.sources.mail:ImapSource",
    "smtp": "lamplighter.sources.mail:SmtpSource",
    "frigate": "lamplighter.sources.frigate:FrigateSource",
    "slack": "lamplighter.sources.slack:SlackSource",
    "mqtt": "lamplighter.sources.mqtt:MqttSource",
    "camera": "lamplighter.sources.camera:CameraSource",
}


@cache
def source_types() -> dict[str, str | type[Source]]:
    """Installed source types by the name used in `sources: - type: NAME` (classes or import paths)."""
    plugins = {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}
    return {**plugins, **BUILT_IN}


def is_source_type(name: str) -> bool:
    """Whether a source type of this name is installed. A built-in one is known without scanning every
    installed package's entry points (tens of ms at start-up); a plug-in cannot replace it anyway."""
    return name in BUILT_IN or name in source_types()


def load_source_type(name: str) -> type[Source]:
    """The class of a source type, importing its module on first use."""
    found = BUILT_IN.get(name) or source_types()[name]
    return found if isinstance(found, type) else load_class(found, Source)


def build_sources(entries: Sequence[Mapping[str, Any]], clock: Clock) -> dict[str, Source]:
    """Every configured source by name; ConfigError lists every problem with its path."""
    sources: dict[str, Source] = {}
    problems: list[tuple[str, str]] = []
    for index, entry in enumerate(entries):
        place = f"sources.{index}"
        if not is_source_type(str(entry.get("type"))):
            available = ", ".join(sorted(source_types())) or "none installed yet"
            problems.append((f"{place}.type", f"unknown source type {entry.get('type')!r} (available: {available})"))
            continue
        try:
            kind = load_source_type(str(entry["type"]))
        except ImportError as exc:
            problems.append((f"{place}.type", f"the {entry['type']} source needs a library that is not installed "
                                              f"({exc}); install it with pip install 'lamplighter[{entry['type']}]'"))
            continue
        try:
            source = kind.from_config(entry, clock, place)
        except ConfigError as exc:
            problems.extend(exc.problems)
            continue
        if source.name in RESERVED_NAMES:
            problems.append((f"{place}.name", f"the name {source.name!r} is Lamplighter's own: choose another"))
        elif source.name in sources:
            problems.append((f"{place}.name", f"a second source named {source.name!r}: give each a unique name"))
        sources[source.name] = source
    if problems:
        raise ConfigError(problems)
    return sources
