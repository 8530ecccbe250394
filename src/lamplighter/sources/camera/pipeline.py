"""One analysed frame: shrink, motion gate, detector, zones, visit logic; and the snapshot.

The detector runs only when the picture moved, or while someone may be there (a streak is
building or a visit is open), so a person standing still at the door keeps the visit alive.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from lamplighter.sources.camera.detect import Detection, Detector, HogDetector, Image, OnnxDetector
from lamplighter.sources.camera.motion import MotionGate
from lamplighter.sources.camera.settings import CameraSettings
from lamplighter.sources.camera.visit import Action, VisitTracker
from lamplighter.sources.camera.zones import Box, zones_of

SNAPSHOT_QUALITY = 85
BOX_COLOUR = (0, 255, 0)


@dataclass(frozen=True)
class Person:
    box: Box  # frame pixels
    score: float
    zones: tuple[str, ...]


@dataclass(frozen=True)
class FrameReport:
    """What the analyser made of one frame (printed by `lamplighter camera test`)."""

    t: float
    motion: float  # share of the picture that changed
    looked: bool  # whether the detector ran
    people: tuple[Person, ...]
    counted: tuple[Person, ...]  # the people that count: in a zone, or anywhere if there are no zones
    action: Action | None
    streak: int


def build_detector(settings: CameraSettings) -> Detector:
    if settings.model is None:
        return HogDetector(settings.score_threshold)
    return OnnxDetector(settings.model, settings.score_threshold, settings.person_class)


class Analyser:
    def __init__(self, settings: CameraSettings, detector: Detector) -> None:
        self.settings = settings
        self.detector = detector
        self.motion = MotionGate()
        self.tracker = VisitTracker(settings.min_frames, settings.visit_gap)

    def analyse(self, t: float, frame: Image) -> FrameReport:
        small, scale = shrink(frame, self.settings.width)
        motion = self.motion.changed(small)
        looked = motion >= self.settings.min_motion or self.tracker.watching
        people = tuple(self._person(found, scale) for found in self.detector.detect(small)) if looked else ()
        counted = tuple(p for p in people if p.zones or not self.settings.zones)
        action = self.tracker.observe(t, bool(counted))
        return FrameReport(t, motion, looked, people, counted, action, self.tracker.streak)

    def _person(self, found: Detection, scale: float) -> Person:
        box: Box = (round(found.box[0] * scale), round(found.box[1] * scale),
                    round(found.box[2] * scale), round(found.box[3] * scale))
        return Person(box, found.score, zones_of(box, self.settings.zones))


def shrink(frame: Image, width: int) -> tuple[Image, float]:
    """The frame at most `width` pixels wide, and the factor back to frame pixels."""
    if frame.shape[1] <= width:
        return frame, 1.0
    scale = frame.shape[1] / width
    height = round(frame.shape[0] / scale)
    small = cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)
    return np.asarray(small, np.uint8), scale


def save_snapshot(directory: Path, frame: Image, people: tuple[Person, ...], at: float, keep: int) -> Path:
    """The frame with the people boxed as DIRECTORY/YYYYmmdd-HHMMSS-mmm.jpg; only the newest `keep` stay."""
    directory.mkdir(parents=True, exist_ok=True)
    picture = frame.copy()
    for person in people:
        cv2.rectangle(picture, person.box[:2], person.box[2:], BOX_COLOUR, 2)
    path = directory / f"{time.strftime('%Y%m%d-%H%M%S', time.localtime(at))}-{int(at * 1000) % 1000:03d}.jpg"
    if not cv2.imwrite(str(path), picture, [cv2.IMWRITE_JPEG_QUALITY, SNAPSHOT_QUALITY]):
        raise OSError(f"could not write {path}")
    for old in sorted(directory.glob("*.jpg"))[:-keep]:
        old.unlink(missing_ok=True)
    return path
