"""The camera source on a live MJPEG stream: it sees, goes blind when the camera drops, and comes back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from lamplighter.backoff import Backoff
from lamplighter.model import Event, Outcome, Receipt, Status, SystemClock
from lamplighter.sources import build_sources
from lamplighter.sources.camera import CameraSource
from tests.peers.mjpeg import MjpegCamera
from tests.scenes import MagentaDetector, Step, scene
from tests.test_service import eventually

W, H = 320, 240
STREAM_WAIT = 10.0  # seconds: opening a stream, a gap, a reconnect, on a busy machine


@pytest.fixture
def person_at_the_door() -> Iterator[MjpegCamera]:
    with MjpegCamera(scene(W, H, [Step(person=(160, 220))]), fps=10).start() as camera:
        yield camera


@pytest.fixture
async def watching(person_at_the_door: MjpegCamera) -> AsyncIterator[tuple[CameraSource, list[Event]]]:
    [source] = build_sources([{"type": "camera", "name": "porch", "url": person_at_the_door.url, "fps": 5,
                               "width": W, "min_frames": 2, "visit_gap": "1s"}], SystemClock()).values()
    assert isinstance(source, CameraSource)
    source.detector = MagentaDetector()
    source.backoff = Backoff(first=0.05, most=0.2)
    events: list[Event] = []

    def submit(event: Event) -> Receipt:
        events.append(event)
        return Receipt(len(events), Outcome.SHOWN, (), None, None)

    task = asyncio.create_task(source.run(submit))
    yield source, events
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


def statuses(events: list[Event]) -> list[Any]:
    return [event.status for event in events]


async def test_a_live_stream_fires_and_a_dropped_camera_makes_the_source_blind_until_it_is_back(
        person_at_the_door: MjpegCamera, watching: tuple[CameraSource, list[Event]]) -> None:
    source, events = watching
    await eventually(lambda: source.health.connected, STREAM_WAIT)
    await eventually(lambda: statuses(events) == [Status.FIRING], STREAM_WAIT)
    assert events[0].title == "person at porch"

    person_at_the_door.stop()  # the camera loses power
    await eventually(lambda: not source.health.connected, STREAM_WAIT)
    assert source.health.error.startswith(f"camera {person_at_the_door.url}: ")
    # the gap passes while the camera is away: the visit ends
    await eventually(lambda: statuses(events) == [Status.FIRING, Status.RESOLVED], STREAM_WAIT)
    assert events[1].key == events[0].key

    person_at_the_door.start()  # back, with the person still there: a new visit
    await eventually(lambda: source.health.connected, STREAM_WAIT)
    await eventually(lambda: statuses(events) == [Status.FIRING, Status.RESOLVED, Status.FIRING], STREAM_WAIT)
    assert events[2].key != events[0].key


async def test_a_camera_that_is_not_there_yet_is_blind_then_connects(person_at_the_door: MjpegCamera) -> None:
    person_at_the_door.stop()
    [source] = build_sources([{"type": "camera", "url": person_at_the_door.url}], SystemClock()).values()
    assert isinstance(source, CameraSource)
    source.detector = MagentaDetector()
    source.backoff = Backoff(first=0.05, most=0.1)
    task = asyncio.create_task(source.run(lambda event: Receipt(1, Outcome.SHOWN, (), None, None)))
    try:
        await eventually(lambda: source.health.error.endswith("cannot open the stream"), STREAM_WAIT)
        assert not source.health.connected
        person_at_the_door.start()
        await eventually(lambda: source.health.connected, STREAM_WAIT)
    finally:
        task.cancel()
