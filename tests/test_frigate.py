"""The Frigate source: visits from Frigate's event lifecycle, first as pure logic, then through Mosquitto.

Messages are built from the realistic sample in tests/data/frigate/ (a `new` with the shape
Frigate publishes), changing only what a sequence needs: type, id, zones, score, box.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from lamplighter.backoff import Backoff
from lamplighter.errors import ConfigError
from lamplighter.model import Event, Outcome, Status
from lamplighter.service import Service
from lamplighter.sources import build_sources
from lamplighter.sources.frigate import FrigateSettings, FrigateSource, FrigateVisits
from tests.conftest import START, FakeClock
from tests.peers.mosquitto import Mosquitto
from tests.test_service import eventually

SAMPLE = json.loads((Path(__file__).parent / "data" / "frigate" / "frigate-event-new.json").read_text())
OBJECT = SAMPLE["after"]["id"]
SECOND = "1732480003.654321-def456"


def message(phase: str = "update", object_id: str = OBJECT, zones: tuple[str, ...] = (),
            **after: Any) -> dict[str, Any]:
    """A frigate/events message: the sample with this phase, id and entered zones (current = the last one)."""
    sample = copy.deepcopy(SAMPLE)
    sample["type"] = phase
    sample["after"].update(id=object_id, entered_zones=list(zones), current_zones=list(zones[-1:]), **after)
    sample["before"]["id"] = object_id
    if phase == "end":
        sample["after"]["end_time"] = sample["after"]["frame_time"] + 5
    return sample


def review(phase: str, review_id: str, objects: list[str], zones: list[str]) -> dict[str, Any]:
    after = {"id": review_id, "camera": "front_door", "start_time": 1732480000.1, "end_time": None,
             "severity": "alert", "thumb_path": f"/media/frigate/clips/review/thumb-front_door-{review_id}.webp",
             "data": {"detections": [OBJECT], "objects": objects, "sub_labels": [], "zones": zones, "audio": []}}
    return {"type": phase, "before": after, "after": after}


def visits(**settings: Any) -> FrigateVisits:
    return FrigateVisits(FrigateSettings(type="frigate", **settings), "frigate")


def feed(tracker: FrigateVisits, *messages: dict[str, Any], kind: str = "events", now: float = START) -> list[Event]:
    events: list[Event] = []
    for msg in messages:
        events += tracker.handle(kind, msg, now)  # type: ignore[arg-type]
    return events


def summary(events: list[Event]) -> list[tuple[str, str]]:
    return [(str(e.status), e.key) for e in events]


# ---- the visit logic -----------------------------------------------------------------------------


def test_the_sample_fires_once_with_the_object_id_as_key_and_end_resolves_it() -> None:
    tracker = visits()
    [fired] = tracker.handle("events", SAMPLE, START)
    assert (fired.level, fired.key, fired.status, fired.source) == ("door", OBJECT, Status.FIRING, "frigate")
    assert fired.title == "person at front_door (path)"
    assert fired.labels == {"camera": "front_door", "label": "person", "zones": "path", "frigate_id": OBJECT}
    assert fired.sender == "front_door" and "score 0.84" in fired.body
    assert feed(tracker, message("update", zones=("path", "porch"))) == []
    [ended] = feed(tracker, message("end", zones=("path", "porch")))
    assert (ended.status, ended.key, ended.title) == (Status.RESOLVED, OBJECT, "person at front_door (path) left")
    assert tracker.visits == {}


def test_zones_that_arrive_only_in_an_update_count() -> None:
    tracker = visits(zones=["porch"])
    walking_up = [message("new"), message("update", zones=("street",)), message("update", zones=("street", "path"))]
    assert feed(tracker, *walking_up) == []
    [fired] = feed(tracker, message("update", zones=("street", "path", "porch")))
    assert fired.title == "person at front_door (street, path, porch)"
    assert feed(tracker, message("update", zones=("street", "path", "porch"), score=0.9)) == []


def test_a_second_person_in_the_same_visit_does_not_fire_again() -> None:
    tracker = visits(zones=["porch"])
    first = feed(tracker, message("new", zones=("porch",)))
    second = feed(tracker, message("new", SECOND, zones=("porch",)), message("update", SECOND, zones=("path", "porch")))
    first_leaves = feed(tracker, message("end", zones=("porch",)))
    last_leaves = feed(tracker, message("end", SECOND, zones=("porch",)))
    assert summary(first) == [("firing", OBJECT)]
    assert second == [] and first_leaves == []
    assert summary(last_leaves) == [("resolved", OBJECT)]
    next_visit = feed(tracker, message("new", "1732480099.000000-ghi789", zones=("porch",)))
    assert summary(next_visit) == [("firing", "1732480099.000000-ghi789")]


def test_the_visit_fires_when_a_later_member_qualifies_and_keeps_the_first_key() -> None:
    tracker = visits(zones=["porch"])
    assert feed(tracker, message("new", zones=("street",))) == []  # a passer-by opens the visit
    assert summary(feed(tracker, message("new", SECOND, zones=("porch",)))) == [("firing", OBJECT)]
    assert feed(tracker, message("end", zones=("street",))) == []
    assert summary(feed(tracker, message("end", SECOND, zones=("porch",)))) == [("resolved", OBJECT)]


@pytest.mark.parametrize(("change", "fires"), [
    ({"false_positive": True}, False),
    ({"score": 0.5, "top_score": 0.6}, False),
    ({"score": 0.5, "top_score": 0.75}, True),  # the best score so far counts
    ({"label": "car"}, False),
    ({"camera": "back_yard"}, False),
    ({}, True),
])
def test_filters(change: dict[str, Any], fires: bool) -> None:
    tracker = visits(min_score=0.7, cameras=["front_door"])
    assert bool(feed(tracker, message("new", **change))) is fires


def test_other_labels_never_hold_a_visit_open() -> None:
    tracker = visits()
    feed(tracker, message("new", "car-1", label="car"))
    assert tracker.visits == {}
    assert summary(feed(tracker, message("new"))) == [("firing", OBJECT)]


@pytest.mark.parametrize(("entered", "fires"), [
    (("street", "path", "porch"), True),
    (("street", "driveway", "path", "porch"), True),
    (("path", "porch"), False),  # no street: it did not come from outside
    (("porch", "path", "street"), False),  # leaving
])
def test_approach_by_zone_order(entered: tuple[str, ...], fires: bool) -> None:
    tracker = visits(approach={"zones": ["street", "path", "porch"]})
    steps = [message("update", zones=entered[:n]) for n in range(1, len(entered) + 1)]
    assert bool(feed(tracker, message("new"), *steps)) is fires


@pytest.mark.parametrize(("areas", "fires"), [
    ([10_000, 14_000, 19_000, 26_000], True),
    ([10_000, 14_000, 13_000, 26_000], False),
    ([26_000, 19_000, 14_000, 10_000], False),
])
def test_approach_by_a_growing_box(areas: list[int], fires: bool) -> None:
    tracker = visits(approach={"growing": 3})
    steps = [message("new" if n == 0 else "update", area=area) for n, area in enumerate(areas)]
    events = feed(tracker, *steps)
    assert summary(events) == ([("firing", OBJECT)] if fires else [])


def test_reviews_group_a_visit_under_the_review_id() -> None:
    tracker = visits(subscribe=["reviews"], zones=["porch"])
    assert feed(tracker, review("new", "r1", ["person"], []), kind="reviews") == []
    [fired] = feed(tracker, review("update", "r1", ["person-verified", "car"], ["porch"]), kind="reviews")
    assert (fired.key, fired.title, fired.body) == ("r1", "person at front_door (porch)", "Frigate review r1")
    [ended] = feed(tracker, review("end", "r1", ["person"], ["porch"]), kind="reviews")
    assert (ended.status, ended.key) == (Status.RESOLVED, "r1")


def test_with_both_topics_the_object_and_its_review_item_are_one_visit() -> None:
    tracker = visits(subscribe=["events", "reviews"], zones=["porch"])
    fired = feed(tracker, message("new", zones=("porch",)))
    assert feed(tracker, review("new", "r1", ["person"], ["porch"]), kind="reviews") == []
    assert feed(tracker, message("end", zones=("porch",))) == []  # the review item is still open
    assert summary(feed(tracker, review("end", "r1", ["person"], ["porch"]), kind="reviews")) == [("resolved", OBJECT)]
    assert summary(fired) == [("firing", OBJECT)]


def test_a_member_not_heard_of_for_the_visit_timeout_ends_its_visit() -> None:
    tracker = visits(visit_timeout="10m")
    assert summary(feed(tracker, message("new"))) == [("firing", OBJECT)]
    later = feed(tracker, message("new", SECOND), now=START + 601)  # the first one's `end` was lost
    assert summary(later) == [("resolved", OBJECT), ("firing", SECOND)]


def test_end_all_resolves_what_fired() -> None:
    tracker = visits(zones=["porch"])
    feed(tracker, message("new", zones=("porch",)), message("new", "cam2-obj", camera="garden"))
    assert summary(tracker.end_all(START)) == [("resolved", OBJECT)]
    assert tracker.visits == {}


@pytest.mark.parametrize("bad", [{"type": "new"}, {"type": "gone", "after": {}}, {"type": "new", "after": {"id": "x"}}])
def test_malformed_messages_are_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        visits().handle("events", bad, START)


def test_settings_are_checked_with_their_path() -> None:
    with pytest.raises(ConfigError) as caught:
        build_sources([{"type": "frigate", "broker": "host:x", "approach": {}, "subscribe": ["clips"],
                        "min_score": 2}], FakeClock())
    problems = dict(caught.value.problems)
    assert problems["sources.0.broker"] == "must be HOST or HOST:PORT, not 'host:x'"
    assert "give zones" in problems["sources.0.approach"]
    assert "sources.0.subscribe.0" in problems and "sources.0.min_score" in problems


# ---- through a real broker -------------------------------------------------------------------------


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    with Mosquitto(tmp_path / "mqtt").start() as started:
        yield started


def publish(broker: Mosquitto, topic: str, payload: dict[str, Any] | str, retain: bool = False) -> None:
    broker.publish(topic, payload if isinstance(payload, str) else json.dumps(payload), retain=retain)


def door_events(service: Service) -> list[tuple[str, str]]:
    rows = service.store.recent_events(100)
    return [(row.status, row.outcome) for row in reversed(rows) if row.level == "door"]


@pytest.fixture
def frigate_service(service_factory: Callable[..., Service], broker: Mosquitto) -> Service:
    service = service_factory(f"sources:\n  - {{type: frigate, broker: '{broker.address}', zones: [porch]}}\n")
    source = service.sources["frigate"]
    assert isinstance(source, FrigateSource)
    source.backoff = Backoff(first=0.05, most=0.2)
    return service


async def test_a_person_entering_the_porch_turns_the_lamp_green_once_per_visit(
        frigate_service: Service, broker: Mosquitto, clock: FakeClock) -> None:
    service = frigate_service
    async with service.running():
        await eventually(lambda: service.sources["frigate"].health.connected)
        publish(broker, "frigate/events", SAMPLE)  # new, zones [path]: not yet
        publish(broker, "frigate/events", message("update", zones=("path", "porch")))
        await eventually(lambda: len(door_events(service)) == 1)
        assert service.lamps["desk"].showing is not None and service.lamps["desk"].showing.key == OBJECT
        publish(broker, "frigate/events", message("new", SECOND, zones=("porch",)))  # the courier's helper
        publish(broker, "frigate/events", message("end", zones=("path", "porch")))
        publish(broker, "frigate/events", message("end", SECOND, zones=("porch",)))
        await eventually(lambda: len(door_events(service)) == 2)
        assert door_events(service) == [("firing", Outcome.SHOWN), ("resolved", Outcome.RESOLVED)]
        await eventually(lambda: service.lamps["desk"].showing is None)


async def test_frigate_going_offline_makes_the_source_blind_and_ends_the_visit(
        frigate_service: Service, broker: Mosquitto) -> None:
    service = frigate_service
    source = service.sources["frigate"]
    async with service.running():
        await eventually(lambda: source.health.connected)
        publish(broker, "frigate/events", message("new", zones=("porch",)))
        await eventually(lambda: len(door_events(service)) == 1)
        publish(broker, "frigate/available", "offline", retain=True)  # Frigate's last will
        await eventually(lambda: not source.health.connected)
        assert source.health.error == "frigate is offline"
        await eventually(lambda: door_events(service)[-1] == ("resolved", Outcome.RESOLVED))
        publish(broker, "frigate/available", "online", retain=True)
        await eventually(lambda: source.health.connected)


async def test_the_source_reconnects_after_the_broker_restarts(frigate_service: Service, broker: Mosquitto,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    service = frigate_service
    source = service.sources["frigate"]
    async with service.running():
        await eventually(lambda: source.health.connected)
        assert "connected again" not in caplog.text  # the first connection is no reconnection
        broker.stop()
        await eventually(lambda: not source.health.connected)
        assert source.health.error.startswith(f"MQTT broker 127.0.0.1:{broker.port}")
        broker.start()
        await eventually(lambda: source.health.connected)
        publish(broker, "frigate/events", message("new", zones=("porch",)))
        await eventually(lambda: door_events(service) == [("firing", Outcome.SHOWN)])
    assert caplog.text.count("source frigate lost its connection") == caplog.text.count("connected again") == 1


async def test_a_retained_offline_at_connect_keeps_the_source_blind(frigate_service: Service,
                                                                    broker: Mosquitto) -> None:
    publish(broker, "frigate/available", "offline", retain=True)
    service = frigate_service
    async with service.running():
        await eventually(lambda: service.sources["frigate"].health.error == "frigate is offline")
        publish(broker, "frigate/events", "not json")  # logged and skipped; the source carries on
        publish(broker, "frigate/available", "online", retain=True)
        await eventually(lambda: service.sources["frigate"].health.connected)
