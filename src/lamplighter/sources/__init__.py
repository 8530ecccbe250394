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
from lamplighter.model import Clock
from lamplighter.sources.base import Source

ENTRY_POINT_GROUP = "lamplighter.sources"
RESERVED_NAMES = frozenset({"api", "watchdog"})  # the HTTP API's and the dead-man's switch's own events
BUILT_IN: dict[str, type[Source]] = {}


@cache
def source_types() -> dict[str, type[Source]]:
    """Installed source types by the name used in `sources: - type: NAME`."""
    plugins = {ep.name: ep.load() for ep in entry_points(group=ENTRY_POINT_GROUP)}
    return {**plugins, **BUILT_IN}


def build_sources(entries: Sequence[Mapping[str, Any]], clock: Clock) -> dict[str, Source]:
    """Every configured source by name; ConfigError lists every problem with its path."""
    sources: dict[str, Source] = {}
    problems: list[tuple[str, str]] = []
    types = source_types()
    for index, entry in enumerate(entries):
        place = f"sources.{index}"
        kind = types.get(str(entry.get("type")))
        if kind is None:
            available = ", ".join(sorted(types)) or "none installed yet"
            problems.append((f"{place}.type", f"unknown source type {entry.get('type')!r} (available: {available})"))
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
