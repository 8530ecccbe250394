"""Generated camera scenes for the camera tests and bench/camera.py, written as real video files.

A scene is a front garden seen from the door: sky, a house wall with a door, a lighter path
and porch, texture and sensor noise. Into it walk a person (a silhouette that OpenCV's HOG
people detector recognises, in magenta so the tests' fake detector can find it too) and
things that move but are not people (a passing car). `MagentaDetector` is the tests' fake
detector: it sees people exactly where the picture is magenta, and counts its calls.

    frames = scene(640, 480, [Step(person=(100, 300)), Step(person=(120, 310)), Step(car=200)])
    write_video(tmp_path / "porch.avi", frames, fps=10)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from lamplighter.sources.camera.detect import Detection

Image = NDArray[np.uint8]
MAGENTA = (255, 0, 255)  # BGR
PERSON_HEIGHT = 0.55  # of the frame height, feet to head, at the bottom of the picture


@dataclass(frozen=True)
class Step:
    """What is in one frame: a person's feet at (x, y) and a car's left edge at x, in frame pixels."""

    person: tuple[int, int] | None = None
    car: int | None = None


def background(width: int, height: int, seed: int = 7) -> Image:
    rng = np.random.default_rng(seed)
    frame = np.zeros((height, width, 3), np.uint8)
    frame[:] = np.linspace(170, 90, height, dtype=np.uint8)[:, None, None]  # sky to ground
    cv2.rectangle(frame, (0, 0), (width, height // 3), (150, 120, 100), -1)  # the house wall
    cv2.rectangle(frame, (int(width * 0.42), height // 12), (int(width * 0.58), height // 3), (40, 60, 90), -1)
    path = np.array([[width * 0.45, height / 3], [width * 0.55, height / 3], [width * 0.8, height],
                     [width * 0.2, height]], np.int32)
    cv2.fillPoly(frame, [path], (125, 130, 135))
    texture = rng.integers(0, 30, (height // 8, width // 8, 1), dtype=np.uint8)
    frame = cv2.add(frame, cv2.resize(texture, (width, height))[:, :, None].repeat(3, axis=2))
    return cv2.GaussianBlur(frame, (3, 3), 0)


def draw_person(frame: Image, feet: tuple[int, int], colour: tuple[int, int, int] = MAGENTA) -> None:
    """A standing figure (head, body, arms, legs) whose feet are at `feet`."""
    x, y = feet
    s = frame.shape[0] * PERSON_HEIGHT / 150  # the figure is 150 units tall
    top = y - 150 * s
    cv2.circle(frame, (x, round(top + 12 * s)), round(12 * s), (150, 170, 200), -1)
    cv2.ellipse(frame, (x, round(top + 57 * s)), (round(18 * s), round(32 * s)), 0, 0, 360, colour, -1)
    for side in (-1, 1):
        cv2.line(frame, (x + side * round(8 * s), round(top + 82 * s)), (x + side * round(12 * s), y), colour,
                 round(10 * s))
        cv2.line(frame, (x + side * round(16 * s), round(top + 32 * s)), (x + side * round(26 * s),
                 round(top + 87 * s)), colour, round(8 * s))


def draw_car(frame: Image, left: int) -> None:
    height = frame.shape[0]
    top = int(height * 0.36)
    cv2.rectangle(frame, (left, top), (left + height // 2, top + height // 8), (160, 60, 20), -1)
    for wheel in (left + height // 10, left + height // 2 - height // 10):
        cv2.circle(frame, (wheel, top + height // 8), height // 30, (20, 20, 20), -1)


def scene(width: int, height: int, steps: Iterable[Step], seed: int = 7) -> list[Image]:
    base = background(width, height, seed)
    rng = np.random.default_rng(seed + 1)
    frames = []
    for step in steps:
        frame = base.copy()
        if step.car is not None:
            draw_car(frame, step.car)
        if step.person is not None:
            draw_person(frame, step.person)
        noise = rng.integers(0, 4, frame.shape, dtype=np.uint8)  # sensor noise: never counts as motion
        frames.append(cv2.add(frame, noise))
    return frames


def walk(start: tuple[int, int], end: tuple[int, int], frames: int) -> list[Step]:
    """A person walking in a straight line from `start` to `end` over `frames` frames."""
    return [Step(person=(round(start[0] + (end[0] - start[0]) * i / max(1, frames - 1)),
                         round(start[1] + (end[1] - start[1]) * i / max(1, frames - 1)))) for i in range(frames)]


def still(frames: int) -> list[Step]:
    return [Step() for _ in range(frames)]


def write_video(path: Path, frames: Sequence[Image], fps: float) -> Path:
    """An MJPG .avi, which OpenCV's bundled FFmpeg writes and reads everywhere."""
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), fps, (width, height))
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path


class MagentaDetector:
    """A deterministic detector: a person wherever the picture is magenta."""

    name = "magenta"

    def __init__(self) -> None:
        self.calls = 0

    def detect(self, image: Image) -> list[Detection]:
        self.calls += 1
        mask = cv2.inRange(image, (180, 0, 180), (255, 90, 255))
        count, _, stats, _ = cv2.connectedComponentsWithStats(mask)
        return [Detection((int(x), int(y), int(x + w), int(y + h)), 1.0)
                for x, y, w, h, area in stats[1:count] if area > 50]
