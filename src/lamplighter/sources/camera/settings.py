"""The settings of a camera source (`type: camera`), importable without OpenCV.

Three lines are enough (`type: camera`, `url: rtsp://...`, and `sources:` above them); the
rest tunes what counts as someone at the door:

    sources:
      - type: camera
        name: porch
        url: rtsp://user:${CAMERA_PASSWORD}@10.0.0.40/stream2
        zones: {porch: [[0, 300], [640, 300], [640, 480], [0, 480]]}   # frame pixels
        min_frames: 3          # analysed frames in a row with a person in a zone
        visit_gap: 30s         # no person for this long ends the visit; the next one fires again
        snapshot_dir: /var/lib/lamplighter/snapshots
"""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, field_validator

from lamplighter.config import Duration
from lamplighter.sources.base import SourceSettings

HOG_MIN_SCORE = 1.0  # HOG's SVM weight: non-people reach 0.6-0.7, people usually 1.5 and more
ONNX_MIN_SCORE = 0.5  # a YOLO class confidence
Point = tuple[float, float]


class CameraSettings(SourceSettings):
    url: str = Field(min_length=1)  # rtsp://, http:// (MJPEG), or a video file
    fps: float = Field(default=5.0, gt=0, le=30)  # frames analysed per second
    width: int = Field(default=640, ge=128)  # frames are analysed at this width (never upscaled)
    model: Path | None = None  # a YOLO-style ONNX model; unset: OpenCV's built-in HOG people detector
    person_class: int = Field(default=0, ge=0)  # the class of "person" in the model (COCO: 0)
    min_score: float | None = Field(default=None, ge=0)  # unset: 1.0 for HOG, 0.5 for a model
    min_motion: float = Field(default=0.002, ge=0, le=1)  # share of the picture that must change
    zones: dict[str, list[Point]] = Field(default_factory=dict)  # name -> polygon in frame pixels; none: anywhere
    min_frames: int = Field(default=3, ge=1)
    visit_gap: Duration = 30.0
    level: str = "door"
    snapshot_dir: Path | None = None
    snapshot_keep: int = Field(default=200, ge=1)  # older snapshots of this source are deleted

    @field_validator("zones")
    @classmethod
    def _polygons(cls, value: dict[str, list[Point]]) -> dict[str, list[Point]]:
        for name, points in value.items():
            if len(points) < 3:
                raise ValueError(f"zone {name!r} needs at least 3 points [x, y], not {len(points)}")
        return value

    @field_validator("model", "snapshot_dir")
    @classmethod
    def _expand(cls, value: Path | None) -> Path | None:
        return None if value is None else value.expanduser()

    @field_validator("model")
    @classmethod
    def _model_exists(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"no ONNX model at {value}")
        if value is not None and find_spec("onnxruntime") is None:
            raise ValueError("an ONNX model needs onnxruntime: pip install 'lamplighter[onnx]'")
        return value

    @property
    def score_threshold(self) -> float:
        if self.min_score is not None:
            return self.min_score
        return HOG_MIN_SCORE if self.model is None else ONNX_MIN_SCORE

    @property
    def is_file(self) -> bool:
        """A video file (played once, timed by its own clock) rather than a live stream."""
        return "://" not in self.url or self.url.startswith("file://")

    @property
    def shown_url(self) -> str:
        """The URL without user, password or query, for logs and health messages."""
        parts = urlsplit(self.url)
        if self.is_file or not parts.netloc:
            return self.url
        host = parts.netloc.rpartition("@")[2]
        return urlunsplit((parts.scheme, host, parts.path, "", ""))
