"""JSON shapes shared by the API, the lamp pages and the dashboard."""

from __future__ import annotations

from typing import Any

from lamplighter.announce.text import where_text
from lamplighter.model import LampView
from lamplighter.rules.placement import Placement


def lamp_json(view: LampView) -> dict[str, Any]:
    showing = view.showing
    return {
        "name": view.name,
        "kind": view.kind,
        "driver": view.driver,
        "url": view.url,
        "online": view.online,
        "reached": view.reached,
        "error": view.error or None,
        "state": view.state.to_dict() if view.state else None,
        "showing": None if showing is None else {
            "event_id": showing.event_id, "level": showing.level, "title": showing.title,
            "started_at": showing.started_at, "expires_at": showing.expires_at,
        },
    }


def placement_json(placement: Placement) -> dict[str, Any]:
    """Where a signal is: `state` (on_lamp, queued, snoozed, fallback_only, offline, ended) and the words."""
    behind = placement.behind
    return {
        "state": placement.where.value,
        "text": where_text(placement),
        "lamps": list(placement.lamps),
        "behind": None if behind is None else {"event_id": behind.event_id, "level": behind.level,
                                               "title": behind.title},
        "offline": [{"lamp": lamp, "error": error} for lamp, error in placement.offline],
        "ever_shown_on": list(placement.ever_shown_on),
    }
