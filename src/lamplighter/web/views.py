"""JSON shapes shared by the API, the lamp pages and the dashboard."""

from __future__ import annotations

from typing import Any

from lamplighter.model import LampView


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
