"""The camera source on generated video files, with a fake detector so every run is the same.

The fake detector (tests/scenes.py) sees magenta as people: the scenes draw people in magenta,
in a shape the real HOG detector recognises too (test_camera_detectors.py). Videos
are 320x240 at 10 fps and analysed at 10 fps, so every frame is analysed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from lamplighter.config import parse_config
from lamplighter.errors import ConfigError
from lamplighter.model import Event, Outcome, Receipt, Status, SystemClock
from lamplighter.service import Service
from lamplighter.sources import build_sources
from lamplighter.sources.camera import CameraSource
from lamplighter.sources.camera.detect import Image
from lamplighter.sources.camera.pipeline import Analyser
from lamplighter.sources.camera.settings import CameraSettings
from lamplighter.sources.camera.tool import camera_entry, camera_test
from lamplighter.sources.camera.visit import Action, VisitTracker
from lamplighter.sources.camera.zones import inside, zones_of
from tests.scenes import MagentaDetector, Step, scene, still, walk, write_video
from tests.test_service import eventually

W, H, FPS = 320, 240, 10
STREAM_WAIT = 10.0  # seconds: a worker thread reading a whole video file, on a busy machine
PORCH = [(100, 180), (220, 180), (240, 240), (80, 240)]  # the bottom middle of the picture


# ---- pure parts --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("point", "hit"), [((160, 200), True), ((160, 170), False), ((85, 235), True),
                                            ((85, 190), False), ((300, 220), False)])
def test_a_point_in_a_polygon(point: tuple[float, float], hit: bool) -> None:
    assert inside(point, PORCH) is hit


def test_a_person_is_where_their_feet_are() -> None:
    zones = {"porch": PORCH, "garden": [(0, 0), (320, 0), (320, 240), (0, 240)]}
    assert zones_of((140, 120, 180, 200), zones) == ("porch", "garden")
    assert zones_of((140, 20, 180, 170), zones) == ("garden",)  # head over the porch, feet in front of it


# (frame time, person?) -> action, for min_frames 3 and a 2 s gap
VISIT_STEPS: list[tuple[float, bool, Action | None]] = [
    (0.0, True, None), (0.1, True, None), (0.2, False, None),  # a flicker: the streak starts over
    (0.3, True, None), (0.4, True, None), (0.5, True, Action.FIRE),
    (0.6, True, None), (1.0, False, None), (2.4, True, None),  # back within the gap: the same visit
    (3.0, False, None), (4.3, False, None), (4.4, False, Action.END),  # 2 s after the last sighting
    (4.5, True, None), (4.6, True, None), (4.7, True, Action.FIRE),  # the next visit fires again
]


def test_several_frames_in_a_row_then_once_per_visit_until_a_gap() -> None:
    tracker = VisitTracker(min_frames=3, gap=2.0)
    assert [(t, person, tracker.observe(t, person)) for t, person, _ in VISIT_STEPS] == VISIT_STEPS


def test_a_visit_ends_while_the_camera_is_away() -> None:
    tracker = VisitTracker(min_frames=1, gap=2.0)
    assert tracker.observe(10.0, True) is Action.FIRE
    assert tracker.expire(11.0) is None
    assert tracker.expire(12.5) is Action.END
    assert tracker.expire(20.0) is None and not tracker.watching


def test_settings_are_checked_with_their_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        build_sources([{"type": "camera", "url": "rtsp://cam", "zones": {"porch": [[0, 0], [1, 1]]},
                        "model": str(tmp_path / "missing.onnx"), "visit_gap": "soon", "fps": 0}], SystemClock())
    problems = dict(caught.value.problems)
    assert problems["sources.0.zones"] == "zone 'porch' needs at least 3 points [x, y], not 2"
    assert problems["sources.0.model"] == f"no ONNX model at {tmp_path / 'missing.onnx'}"
    assert "not a duration" in problems["sources.0.visit_gap"]
    assert "sources.0.fps" in problems


def test_three_lines_of_yaml_are_enough() -> None:
    config = parse_config("sources:\n  - type: camera\n    url: rtsp://admin:secret@10.0.0.40/stream2\n", env={})
    [source] = build_sources([entry.model_dump() for entry in config.sources], SystemClock()).values()
    assert isinstance(source, CameraSource)
    assert (source.name, source.camera.level, source.camera.score_threshold) == ("camera", "door", 1.0)
    assert source.camera.shown_url == "rtsp://10.0.0.40/stream2"
    assert not source.health.connected


# ---- the pipeline on video files -------------------------------------------------------------------


def settings(url: str | Path = "unused.avi", **overrides: Any) -> CameraSettings:
    return CameraSettings(type="camera", url=str(url), fps=FPS, width=W, min_frames=3, visit_gap="1s", **overrides)


def run_pipeline(frames: list[Image], **overrides: Any) -> tuple[list[tuple[float, Action]], MagentaDetector]:
    detector = MagentaDetector()
    analyser = Analyser(settings(**overrides), detector)
    actions = [(round(i / FPS, 1), r.action) for i, f in enumerate(frames)
               if (r := analyser.analyse(i / FPS, f)).action is not None]
    return actions, detector


def test_the_motion_gate_runs_the_detector_only_when_something_moves() -> None:
    frames = scene(W, H, still(10) + [Step(car=x) for x in range(0, 300, 30)] + still(20))
    detector = MagentaDetector()
    analyser = Analyser(settings(), detector)
    calls = []
    for i, frame in enumerate(frames):
        analyser.analyse(i / FPS, frame)
        calls.append(detector.calls)
    assert calls[9] == 1  # the first frame (nothing to compare with yet), then a still scene
    assert calls[19] == 1 + 10  # every frame with the car moving
    assert calls[-1] - calls[19] <= 5  # the background forgets the car within a few frames
    assert calls[-1] == calls[-10]


def test_a_video_with_motion_but_no_person_never_fires() -> None:
    steps = [Step(car=x) for x in range(0, 300, 10)] * 2
    actions, _ = run_pipeline(scene(W, H, steps), min_motion=0.0)
    assert actions == []


def test_a_person_walking_onto_the_porch_fires_once_when_in_the_zone_for_three_frames() -> None:
    steps = still(3) + walk((40, 120), (160, 220), 10) + [Step(person=(160, 220))] * 15 + still(15)
    actions, _ = run_pipeline(scene(W, H, steps), zones={"porch": PORCH})
    # the feet (the bottom of the legs) cross the porch's edge at y 180 in frame 3 + 5, so the third
    # frame in a row is frame 10; the last frame with the person is 2.7 s, one gap later the visit ends
    assert actions == [(1.0, Action.FIRE), (3.7, Action.END)]


def test_a_person_who_never_reaches_the_zone_does_not_fire() -> None:
    steps = still(3) + walk((20, 100), (300, 120), 20) + still(5)
    actions, _ = run_pipeline(scene(W, H, steps), zones={"porch": PORCH})
    assert actions == []


def test_a_flickering_detection_does_not_fire() -> None:
    steps = still(3) + [Step(person=(160, 220)) if i % 3 else Step() for i in range(30)]
    actions, _ = run_pipeline(scene(W, H, steps))
    assert actions == []


def test_someone_standing_still_keeps_the_visit_open() -> None:
    steps = still(3) + walk((60, 200), (160, 220), 5) + [Step(person=(160, 220))] * 40 + still(12)
    actions, detector = run_pipeline(scene(W, H, steps))
    assert [action for _, action in actions] == [Action.FIRE, Action.END]
    assert actions[1][0] == pytest.approx((3 + 5 + 40) / FPS + 1.0, abs=0.15)
    assert detector.calls >= 45  # no motion while standing, but someone may be there: keep looking


# ---- the source: thread, events, snapshot, end of file -----------------------------------------------


def two_visits(path: Path) -> Path:
    """A person arrives and stays 2 s, leaves for 2 s (longer than the 1 s gap), comes back for 2 s."""
    visit = walk((60, 200), (160, 220), 5) + [Step(person=(160, 220))] * 15
    return write_video(path, scene(W, H, still(5) + visit + still(20) + visit + still(5)), FPS)


async def run_source(url: Path, **overrides: Any) -> tuple[CameraSource, list[Event]]:
    [source] = build_sources([{"type": "camera", "name": "porch", "url": str(url), "fps": FPS, "width": W,
                               "min_frames": 3, "visit_gap": "1s", **overrides}], SystemClock()).values()
    assert isinstance(source, CameraSource)
    source.detector = MagentaDetector()
    events: list[Event] = []

    def submit(event: Event) -> Receipt:
        events.append(event)
        return Receipt(len(events), Outcome.SHOWN, (), None, None)

    await source.run(submit)  # a file is played once, then run() returns
    return source, events


async def test_the_source_fires_once_per_visit_with_a_snapshot(tmp_path: Path) -> None:
    video = two_visits(tmp_path / "porch.avi")
    source, events = await run_source(video, snapshot_dir=str(tmp_path / "snapshots"), snapshot_keep=1)
    assert [(e.status, e.level, e.title) for e in events] == [
        (Status.FIRING, "door", "person at porch"), (Status.RESOLVED, "door", "person at porch left")] * 2
    assert events[0].key == events[1].key != events[2].key == events[3].key
    assert events[0].key.startswith("porch:")
    snapshots = sorted((tmp_path / "snapshots" / "porch").glob("*.jpg"))
    assert [str(s) for s in snapshots] == [events[2].labels["snapshot"]]  # snapshot_keep: 1
    picture = cv2.imread(str(snapshots[0]))
    assert picture.shape == (H, W, 3)
    assert events[0].labels["camera"] == "porch" and events[0].labels["score"] == "1.00"
    assert (source.health.connected, source.health.error) == (True, "")  # finished, not blind


async def test_a_visit_still_open_when_the_file_ends_is_resolved(tmp_path: Path) -> None:
    video = write_video(tmp_path / "v.avi", scene(W, H, still(3) + [Step(person=(160, 220))] * 10), FPS)
    _, events = await run_source(video, zones={"porch": PORCH})
    assert [(e.status, e.title) for e in events] == [(Status.FIRING, "person at porch (porch)"),
                                                     (Status.RESOLVED, "person at porch left")]
    assert events[0].labels["zones"] == "porch"


async def test_a_missing_file_makes_the_source_blind(tmp_path: Path) -> None:
    [source] = build_sources([{"type": "camera", "url": str(tmp_path / "nope.avi")}], SystemClock()).values()
    assert isinstance(source, CameraSource)
    source.detector = MagentaDetector()
    task = asyncio.create_task(source.run(lambda event: None))  # type: ignore[arg-type,return-value]
    missing = f"cannot open the video file {tmp_path / 'nope.avi'}"
    await eventually(lambda: source.health.error.endswith(missing), STREAM_WAIT)
    task.cancel()


async def test_through_the_service_the_lamp_turns_green(tmp_path: Path,
                                                       service_factory: Callable[..., Service]) -> None:
    video = two_visits(tmp_path / "porch.avi")
    service = service_factory(f"sources:\n  - {{type: camera, name: porch, url: '{video}', fps: {FPS}, width: {W}, "
                              "visit_gap: 1s}\n")
    source = service.sources["porch"]
    assert isinstance(source, CameraSource)
    source.detector = MagentaDetector()
    async with service.running():
        await eventually(lambda: service.store.count_events() == 4, STREAM_WAIT)
        rows = [(r.level, r.status, r.outcome) for r in reversed(service.store.recent_events(10))]
        assert rows == [("door", "firing", "shown"), ("door", "resolved", "resolved")] * 2


# ---- lamplighter camera test ---------------------------------------------------------------------------


def test_camera_test_prints_what_the_source_sees(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    video = write_video(tmp_path / "v.avi", scene(W, H, still(3) + walk((60, 200), (160, 220), 6)), FPS)
    monkeypatch.setattr("lamplighter.sources.camera.tool.build_detector", lambda settings: MagentaDetector())
    config = parse_config(f"sources:\n  - {{type: camera, name: porch, url: '{video}', fps: {FPS}, width: {W},"
                          f" zones: {{porch: {[list(p) for p in PORCH]}}}}}\n", env={})
    lines: list[str] = []
    code = camera_test(camera_entry(config, "porch"), lines.append, save_dir=tmp_path / "frames")
    assert code == 0
    assert lines[0].startswith(f"porch: {video}; magenta detector, min score 1.0; 10 fps at 320 px wide")
    assert lines[1] == "frames are 320x240 (zones are in these pixels)"
    assert lines[2] == "    0.00s  motion 100.0%  nobody"
    assert lines[3] == "    0.10s  motion   0.0%  no motion, detector skipped"
    assert lines[5] == "    0.30s  motion   3.4%  person 1.00 at [34,90,88,206]"  # feet not on the porch yet
    assert lines[7].endswith("in porch  streak 1/3")
    assert lines[9].endswith("in porch  -> FIRE")
    assert lines[-1] == "9 frame(s) analysed"
    assert len(list((tmp_path / "frames").glob("*.jpg"))) == 1 + 6  # the first frame and those with people


def test_camera_test_takes_a_url_and_reports_a_dead_stream(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("lamplighter.sources.camera.tool.build_detector", lambda settings: MagentaDetector())
    entry = camera_entry(parse_config("", env={}), str(tmp_path / "missing.avi"))
    assert entry == {"type": "camera", "url": str(tmp_path / "missing.avi")}
    lines: list[str] = []
    assert camera_test(entry, lines.append) == 1
    assert lines[-1] == f"error: {tmp_path / 'missing.avi'}: cannot open the video file {tmp_path / 'missing.avi'}"


def test_frames_are_analysed_at_the_configured_rate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    video = write_video(tmp_path / "v.avi", scene(W, H, still(30)), 15)  # 2 s at 15 fps
    monkeypatch.setattr("lamplighter.sources.camera.tool.build_detector", lambda settings: MagentaDetector())
    lines: list[str] = []
    camera_test({"type": "camera", "url": str(video), "fps": 5}, lines.append)
    times = [float(line.split("s")[0]) for line in lines[2:-1]]
    assert times == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8, 1.0, 1.2, 1.4, 1.6, 1.8], abs=0.01)
    assert np.diff(times).min() > 0.19
