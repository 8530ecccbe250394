"""`lamplighter camera test SOURCE`: what a camera source sees, frame by frame, to tune it.

SOURCE is the name of a camera under `sources:` (its zones and thresholds apply) or a
stream URL or video file (default settings). One line per analysed frame: the motion, each
person with score, box and zones, the streak, and when the source would fire or end a
visit. With `save_dir`, frames with people (and the first frame) are written there with
the zones and boxes drawn, to check the polygons against the picture.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from lamplighter.config import Config
from lamplighter.model import SystemClock
from lamplighter.sources.camera.detect import Image
from lamplighter.sources.camera.pipeline import Analyser, FrameReport, Person, build_detector
from lamplighter.sources.camera.settings import CameraSettings
from lamplighter.sources.camera.source import CameraSource
from lamplighter.sources.camera.stream import StreamError, open_capture, sampled_frames

ZONE_COLOUR = (255, 128, 0)
COUNTED_COLOUR = (0, 255, 0)
IGNORED_COLOUR = (0, 0, 255)


def camera_entry(config: Config, source: str) -> dict[str, Any]:
    """The `sources:` entry of the camera named `source`, else `source` as a URL or file."""
    for entry in config.sources:
        fields = entry.model_dump()
        if fields["type"] == CameraSource.source_type and fields.get("name", CameraSource.source_type) == source:
            return fields
    return {"type": CameraSource.source_type, "url": source}


def camera_test(source_settings: Mapping[str, Any], out: Callable[[str], None], max_frames: int | None = None,
                save_dir: Path | None = None) -> int:
    """Print what the camera sees until the file ends, `max_frames`, or Ctrl-C; 1 if the stream fails.

    Raises ConfigError for settings that do not validate.
    """
    source = CameraSource.from_config(source_settings, SystemClock(), "camera")
    assert isinstance(source, CameraSource)
    settings = source.camera
    analyser = Analyser(settings, build_detector(settings))
    out(_header(source.name, settings, analyser.detector.name))
    try:
        capture = open_capture(settings.url, settings.is_file)
    except StreamError as exc:
        out(f"error: {settings.shown_url}: {exc}")
        return 1
    start, count = None, 0
    try:
        for t, frame in sampled_frames(capture, settings.fps, settings.is_file, threading.Event()):
            start = t if start is None else start
            if count == 0:
                out(f"frames are {frame.shape[1]}x{frame.shape[0]} (zones are in these pixels)")
            report = analyser.analyse(t - start, frame)
            out(describe(report, settings.min_frames))
            if save_dir is not None and (count == 0 or report.people):
                _save(save_dir / f"{count:05d}.jpg", frame, report, settings)
            count += 1
            if max_frames is not None and count >= max_frames:
                break
    except StreamError as exc:
        out(f"error: {settings.shown_url}: {exc}")
        return 1
    except KeyboardInterrupt:
        pass
    finally:
        capture.release()
    out(f"{count} frame(s) analysed")
    return 0


def _header(name: str, settings: CameraSettings, detector: str) -> str:
    zones = ", ".join(settings.zones) or "none (the whole picture)"
    return (f"{name}: {settings.shown_url}; {detector} detector, min score {settings.score_threshold}; "
            f"{settings.fps:g} fps at {settings.width} px wide; min motion {settings.min_motion:.1%}; "
            f"{settings.min_frames} frame(s) in a row; zones: {zones}")


def describe(report: FrameReport, min_frames: int) -> str:
    """One line per analysed frame."""
    if not report.looked:
        seen = "no motion, detector skipped"
    elif not report.people:
        seen = "nobody"
    else:
        seen = "; ".join(_person(person) for person in report.people)
    state = f"  streak {report.streak}/{min_frames}" if report.streak else ""
    action = f"  -> {report.action.value.upper()}" if report.action else ""
    return f"{report.t:8.2f}s  motion {report.motion:6.1%}  {seen}{state}{action}"


def _person(person: Person) -> str:
    x1, y1, x2, y2 = person.box
    where = f" in {', '.join(person.zones)}" if person.zones else ""
    return f"person {person.score:.2f} at [{x1},{y1},{x2},{y2}]{where}"


def _save(path: Path, frame: Image, report: FrameReport, settings: CameraSettings) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    picture = frame.copy()
    for polygon in settings.zones.values():
        cv2.polylines(picture, [np.array(polygon, np.int32)], True, ZONE_COLOUR, 2)
    for person in report.people:
        colour = COUNTED_COLOUR if person in report.counted else IGNORED_COLOUR
        cv2.rectangle(picture, person.box[:2], person.box[2:], colour, 2)
    cv2.imwrite(str(path), picture)
