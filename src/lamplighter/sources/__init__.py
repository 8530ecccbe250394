"""Sources: where events come from besides the HTTP API (mail, chat, webhooks, MQTT, cameras).

A source type is registered by name; a plug-in package adds one with an entry point in the
group `lamplighter.sources`. The core ships none beyond the HTTP API itself.
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import entry_points

ENTRY_POINT_GROUP = "lamplighter.sources"


@cache
def source_types() -> dict[str, object]:
    """Installed source types by the name used in `sources: - type: NAME`."""
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
