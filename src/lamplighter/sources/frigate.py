"""Frigate NVR over MQTT (`type: frigate`): one `door` event per visit, resolved when it ends.

Frigate publishes a lifecycle per tracked object on `frigate/events` (`new`, `update`, `end`
under one `after.id`) and per review item on `frigate/reviews` (the same under the review id).
A **visit** is the time a camera has at least one wanted object (label, camera) alive: the
first one opens the visit and gives it its key, later ones (a second person, the review item
that groups them) join it, and the visit ends when the last one ends. A visit fires once, as
soon as one of its members qualifies (not a false positive, score, zones, approach); zones
that arrive only in an `update` count. Its end sends a resolved event with the same key.

Frigate's `end` can be lost (Frigate restarted, our connection dropped), so open visits are
ended when `frigate/available` says `offline`, when the broker connection drops, and when a
member has not been heard of for `visit_timeout`; otherwise a stuck visit would swallow the
next real one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from lamplighter.config import Duration
from lamplighter.model import Clock, Event, make_event
from lamplighter.sources.base import SourceSettings, Submit
from lamplighter.sources.mqtt_client import BrokerSettings, BrokerSource
from lamplighter.untrusted import MAX_MESSAGE_BYTES, load_json

Kind = Literal["events", "reviews"]
KINDS: dict[str, Kind] = {"events": "events", "reviews": "reviews"}
VERIFIED_SUFFIX = "-verified"  # reviews list a face- or plate-verified object as e.g. "person-verified"
MAX_AREAS = 16  # enough history for any sensible `approach.growing`


class ApproachSettings(BaseModel):
    """Fire only for someone coming closer: zones entered in this order, or a box that keeps growing."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    zones: list[str] = []
    growing: int | None = Field(default=None, ge=1)  # the box grew in this many consecutive messages

    @model_validator(mode="after")
    def _one_rule(self) -> ApproachSettings:
        if not self.zones and self.growing is None:
            raise ValueError("give zones (e.g. [street, path, porch]) or growing (e.g. 3), or both")
        return self


class FrigateSettings(BrokerSettings):
    topic_prefix: str = "frigate"
    subscribe: list[Kind] = Field(default=["events"], min_length=1)
    cameras: list[str] | None = None  # None: every camera
    labels: list[str] = Field(default=["person"])  # pydantic copies mutable defaults
    zones: list[str] | None = None  # None: anywhere in the picture
    min_score: float = Field(default=0.0, ge=0.0, le=1.0)
    approach: ApproachSettings | None = None
    level: str = "door"
    visit_timeout: Duration = 600.0
    frigate_url: str | None = None  # e.g. http://frigate:5000: events link their snapshot


@dataclass(frozen=True)
class Sighting:
    """One Frigate object or review item, as its latest message describes it."""

    id: str
    kind: Kind
    labels: tuple[str, ...]
    zones: tuple[str, ...]  # in the order entered
    score: float | None  # None for review items, which carry no score
    false_positive: bool
    areas: tuple[float, ...]  # box areas, oldest first
    seen_at: float


@dataclass
class Visit:
    """The time one camera has wanted objects alive; `fired` is the member that turned the lamp on."""

    key: str
    camera: str
    members: dict[str, Sighting] = field(default_factory=dict)
    fired: Sighting | None = None


class FrigateVisits:
    """The visit logic, without I/O: Frigate messages in, events out."""

    def __init__(self, settings: FrigateSettings, source: str) -> None:
        self.settings = settings
        self.source = source
        self.visits: dict[str, Visit] = {}

    def handle(self, kind: Kind, message: Mapping[str, Any], now: float) -> list[Event]:
        """The events one `frigate/events` or `frigate/reviews` message causes; ValueError if malformed."""
        phase, after = message.get("type"), message.get("after")
        if phase not in ("new", "update", "end") or not isinstance(after, Mapping):
            raise ValueError("not a Frigate message: needs type new/update/end and an `after` object")
        camera, item_id = str(after.get("camera") or ""), str(after.get("id") or "")
        if not camera or not item_id:
            raise ValueError("a Frigate message without after.camera or after.id")
        if self.settings.cameras is not None and camera not in self.settings.cameras:
            return []
        events = self._expire(camera, now)
        visit = self.visits.get(camera)
        sighting = read_sighting(kind, after, visit.members.get(item_id) if visit else None, now)
        if not self._wanted(sighting):
            return events
        if visit is None:
            visit = self.visits[camera] = Visit(key=item_id, camera=camera)
        if phase == "end":
            visit.members.pop(item_id, None)
        else:
            visit.members[item_id] = sighting
            if visit.fired is None and self._qualifies(sighting):
                visit.fired = sighting
                events.append(self._event(visit, sighting, now, "firing"))
        if not visit.members:
            events += self._close(visit, now)
        return events

    def end_all(self, now: float) -> list[Event]:
        """Forget every open visit (their `end` will not come); resolved events for those that fired."""
        return [event for visit in list(self.visits.values()) for event in self._close(visit, now)]

    def _expire(self, camera: str, now: float) -> list[Event]:
        visit = self.visits.get(camera)
        if visit is None:
            return []
        timeout = self.settings.visit_timeout
        visit.members = {k: s for k, s in visit.members.items() if now - s.seen_at <= timeout}
        return [] if visit.members else self._close(visit, now)

    def _close(self, visit: Visit, now: float) -> list[Event]:
        del self.visits[visit.camera]
        return [] if visit.fired is None else [self._event(visit, visit.fired, now, "resolved")]

    def _wanted(self, sighting: Sighting) -> bool:
        return any(label in self.settings.labels for label in sighting.labels)

    def _qualifies(self, sighting: Sighting) -> bool:
        settings = self.settings
        if sighting.false_positive or (sighting.score is not None and sighting.score < settings.min_score):
            return False
        if settings.zones is not None and not set(settings.zones) & set(sighting.zones):
            return False
        return settings.approach is None or approaching(sighting, settings.approach)

    def _event(self, visit: Visit, sighting: Sighting, now: float, status: str) -> Event:
        label = next(label for label in sighting.labels if label in self.settings.labels)
        where = f" ({', '.join(sighting.zones)})" if sighting.zones else ""
        title = f"{label} at {visit.camera}{where}" + (" left" if status == "resolved" else "")
        score = "" if sighting.score is None else f", score {sighting.score:.2f}"
        labels = {"camera": visit.camera, "label": label, "zones": ",".join(sighting.zones),
                  "frigate_id": sighting.id}
        if self.settings.frigate_url and sighting.kind == "events":
            labels["snapshot_url"] = f"{self.settings.frigate_url.rstrip('/')}/api/events/{sighting.id}/snapshot.jpg"
        return make_event(self.settings.level, title, received_at=now, source=self.source, sender=visit.camera,
                          key=visit.key, status=status, labels=labels,
                          body=f"Frigate {sighting.kind[:-1]} {sighting.id}{score}")


def read_sighting(kind: Kind, after: Mapping[str, Any], previous: Sighting | None, now: float) -> Sighting:
    """A Sighting from a message's `after`; box areas accumulate over the item's messages."""
    item_id = str(after["id"])
    if kind == "reviews":
        data = after.get("data") or {}
        labels = tuple(str(obj).removesuffix(VERIFIED_SUFFIX) for obj in data.get("objects") or ())
        return Sighting(item_id, kind, labels, _strings(data.get("zones")), None, False, (), now)
    zones = _strings(after.get("entered_zones"))
    zones += tuple(zone for zone in _strings(after.get("current_zones")) if zone not in zones)
    scores = [float(s) for s in (after.get("score"), after.get("top_score")) if isinstance(s, (int, float))]
    areas = previous.areas if previous else ()
    area = box_area(after)
    if area is not None:
        areas = (*areas, area)[-MAX_AREAS:]
    return Sighting(item_id, kind, (str(after.get("label") or ""),), zones, max(scores, default=0.0),
                    bool(after.get("false_positive")), areas, now)


def box_area(after: Mapping[str, Any]) -> float | None:
    """The object's box area in pixels: `area`, else from `box` [x1, y1, x2, y2]."""
    if isinstance(after.get("area"), (int, float)):
        return float(after["area"])
    box = after.get("box")
    if isinstance(box, Sequence) and len(box) == 4:
        return float((box[2] - box[0]) * (box[3] - box[1]))
    return None


def approaching(sighting: Sighting, rule: ApproachSettings) -> bool:
    """The zones were entered in the rule's order (others may come between), or the box kept growing."""
    if rule.zones and entered_in_order(rule.zones, sighting.zones):
        return True
    return rule.growing is not None and kept_growing(sighting.areas, rule.growing)


def entered_in_order(wanted: Sequence[str], entered: Sequence[str]) -> bool:
    remaining = iter(entered)
    return all(zone in remaining for zone in wanted)  # `in` consumes the iterator: a subsequence test


def kept_growing(areas: Sequence[float], times: int) -> bool:
    recent = areas[-(times + 1):]
    return len(recent) == times + 1 and all(a < b for a, b in pairwise(recent))


def _strings(value: Any) -> tuple[str, ...]:
    return tuple(str(item) for item in value) if isinstance(value, list) else ()


class FrigateSource(BrokerSource):
    """Subscribes to Frigate's topics; blind while the broker or Frigate itself is down."""

    source_type = "frigate"
    Settings = FrigateSettings

    def __init__(self, name: str, settings: SourceSettings, clock: Clock) -> None:
        super().__init__(name, settings, clock)
        assert isinstance(settings, FrigateSettings)
        self.frigate = settings
        self.visits = FrigateVisits(settings, name)
        self.frigate_online: bool | None = None  # None: not heard yet

    async def picture(self, labels: Mapping[str, str]) -> bytes | None:
        """The snapshot Frigate keeps of the event (its /api/events/ID/snapshot.jpg), only from `frigate_url`."""
        from lamplighter.sources.pictures import fetch_picture

        url, base = labels.get("snapshot_url", ""), self.frigate.frigate_url
        if not base or not url.startswith(f"{base.rstrip('/')}/api/events/") or ".." in url:
            return None
        return await fetch_picture(url)

    def topics(self) -> list[str]:
        prefix = self.frigate.topic_prefix
        return [f"{prefix}/{kind}" for kind in self.frigate.subscribe] + [f"{prefix}/available"]

    def on_connected(self, submit: Submit) -> None:
        if self.frigate_online is not False:
            self.mark_connected()

    def on_disconnected(self, error: str, submit: Submit) -> None:
        self.mark_disconnected(error)
        self._submit_all(self.visits.end_all(self.clock.now()), submit)

    def on_message(self, topic: str, payload: bytes, retained: bool, submit: Submit) -> None:
        last = topic.rpartition("/")[2]
        if last == "available":
            self._availability(payload.decode(errors="replace").strip(), submit)
        elif kind := KINDS.get(last):
            message = load_json(payload, max_bytes=MAX_MESSAGE_BYTES)
            if not isinstance(message, dict):
                raise ValueError("a Frigate message must be a JSON object")
            self._submit_all(self.visits.handle(kind, message, self.clock.now()), submit)

    def _availability(self, state: str, submit: Submit) -> None:
        self.frigate_online = state != "offline"
        if self.frigate_online:
            self.mark_connected()
        else:
            self.mark_disconnected("frigate is offline")
            self._submit_all(self.visits.end_all(self.clock.now()), submit)

    @staticmethod
    def _submit_all(events: list[Event], submit: Submit) -> None:
        for event in events:
            submit(event)
