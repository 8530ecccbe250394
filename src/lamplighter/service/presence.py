"""Presence from Home Assistant: an entity whose state says where a person is (`person.ann`'s zone, a Bermuda area).

A person's `presence: {hass: hass://TOKEN@HOST:8123, entity: sensor.ann_phone_area, rooms: {...}}` is watched
over Home Assistant's websocket API (`subscribe_entities`) on the same connection as the hass:// lamps of that
Home Assistant: drivers/hass.py keeps one HassInstance per instance (address, transport, token) in its
shared registry, which reconnects with the common backoff. Every state HA tells, and every loss of the
connection (None), goes to `tell(person, word)`: the hub's presence (service/hub.py, `Rooms.told`). An
entity that is `unavailable` or `unknown` counts as HA not telling (the last room goes stale after
`stale_after`), not as a room: `not_home` or an area without a room is "in no known room".
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from lamplighter.config import PersonConfig
from lamplighter.drivers.base import LampUrl
from lamplighter.drivers.hass import DEFAULT_TIMEOUT, INSTANCES, Entity, HassInstance, HostKey, instance_key

log = logging.getLogger(__name__)

Tell = Callable[[str, str | None], None]
NOT_TOLD = ("unavailable", "unknown")  # HA's own words for "cannot tell": like a lost connection, not a room


@dataclass(frozen=True)
class Watched:
    """One person's presence entity on one Home Assistant."""

    person: str
    url: LampUrl
    entity: str


def watched_entities(people: Mapping[str, PersonConfig]) -> list[Watched]:
    """The people whose presence is a Home Assistant entity."""
    return [Watched(name, LampUrl.parse(person.presence.hass.get_secret_value()), person.presence.entity)
            for name, person in people.items()
            if person.presence is not None and person.presence.hass is not None and person.presence.entity]


class HassPresence:
    """Watches each person's presence entity and tells the hub its state (None: Home Assistant cannot tell now)."""

    def __init__(self, people: Mapping[str, PersonConfig], tell: Tell) -> None:
        self._watched = watched_entities(people)
        self._tell = tell
        self._held: list[HostKey] = []
        self._heard: dict[str, bool] = {}  # person -> whether HA told their entity last time (for the log)

    def start(self) -> None:
        """Watch every presence entity (needs the running event loop that the hass:// lamps share)."""
        for watched in self._watched:
            key = instance_key(watched.url)
            instance = INSTANCES.acquire(key, functools.partial(HassInstance, watched.url, DEFAULT_TIMEOUT))
            self._held.append(key)
            instance.watch(watched.entity, functools.partial(self._told, watched))

    async def stop(self) -> None:
        held, self._held = self._held, []
        for key in held:
            await INSTANCES.release(key)

    def _told(self, watched: Watched, entity: Entity | None) -> None:
        if not self._held:
            return  # stopped; a hass:// lamp may keep the connection open a little longer
        word = None if entity is None or entity.state in NOT_TOLD else entity.state
        self._log_change(watched, word)
        self._tell(watched.person, word)

    def _log_change(self, watched: Watched, word: str | None) -> None:
        """Once when Home Assistant starts telling an entity's state, and once when it stops (or never started)."""
        if self._heard.get(watched.person) == (word is not None):
            return
        self._heard[watched.person] = word is not None
        if word is not None:
            log.info("presence of %s: %s on %s says %r", watched.person, watched.entity, watched.url.text(), word)
        else:
            log.warning("presence of %s: %s does not tell %s now (unreachable, the token refused, the entity "
                        "unavailable or unknown); the last room counts for stale_after", watched.person,
                        watched.url.text(), watched.entity)
