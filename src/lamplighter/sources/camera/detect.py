"""Person detectors behind one small interface, so the pipeline can be tested with a fake one.

- `HogDetector`: OpenCV's built-in HOG people detector. No download, about 30-50 ms for a
  640x480 frame on one core; it misses many people a modern CNN finds and fires weakly
  (SVM weight 0.6-0.7) on some non-people, hence the default threshold of 1.0.
- `OnnxDetector`: a user-supplied YOLO-style ONNX model run with onnxruntime (optional
  dependency: `pip install 'lamplighter[onnx]'`). Output `(1, 4 + C, N)` (YOLOv8/v11: cx, cy, w, h,
  then a score per class) or `(1, N, 5 + C)` (YOLOv5: cx, cy, w, h, objectness, classes),
  boxes in input pixels; the picture is letterboxed to the model's input size.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np
from numpy.typing import NDArray

from lamplighter.sources.camera.zones import Box

Image = NDArray[np.uint8]
NMS_OVERLAP = 0.45
DEFAULT_INPUT = 640  # for models whose input size is symbolic
LETTERBOX_GREY = 114


@dataclass(frozen=True)
class Detection:
    box: Box  # x1, y1, x2, y2 in the pixels of the picture given to the detector
    score: float


class Detector(Protocol):
    """Finds people in a BGR picture."""

    name: str

    def detect(self, image: Image) -> list[Detection]: ...


class HogDetector:
    name = "hog"

    def __init__(self, min_score: float) -> None:
        self.min_score = min_score
        self.hog = cv2.HOGDescriptor()
        self.hog.setSVMDetector(np.array(cv2.HOGDescriptor.getDefaultPeopleDetector(), np.float32))

    def detect(self, image: Image) -> list[Detection]:
        rects, weights = self.hog.detectMultiScale(image, winStride=(8, 8), padding=(8, 8), scale=1.05)
        return [Detection((int(x), int(y), int(x + w), int(y + h)), float(score))
                for (x, y, w, h), score in zip(rects, np.ravel(weights), strict=True) if score >= self.min_score]


class OnnxDetector:
    name = "onnx"

    def __init__(self, model: Path, min_score: float, person_class: int = 0) -> None:
        import onnxruntime  # type: ignore[import-untyped]  # optional; the settings checked that it is there

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
        self.min_score = min_score
        self.person_class = person_class
        entry = self.session.get_inputs()[0]
        self.input_name = entry.name
        height, width = (side if isinstance(side, int) else DEFAULT_INPUT for side in entry.shape[2:4])
        self.size = (width, height)

    def detect(self, image: Image) -> list[Detection]:
        blob, scale, (pad_x, pad_y) = letterbox(image, self.size)
        output = np.asarray(self.session.run(None, {self.input_name: blob})[0])
        boxes, scores = person_rows(output, self.person_class)
        keep = scores >= self.min_score
        boxes, scores = boxes[keep], scores[keep]
        xywh = [[(cx - w / 2 - pad_x) / scale, (cy - h / 2 - pad_y) / scale, w / scale, h / scale]
                for cx, cy, w, h in boxes.tolist()]
        chosen = cv2.dnn.NMSBoxes(xywh, scores.tolist(), self.min_score, NMS_OVERLAP) if xywh else []
        return [Detection(_clip(xywh[i], image.shape), float(scores[i])) for i in np.ravel(chosen)]


def letterbox(image: Image, size: tuple[int, int]) -> tuple[NDArray[np.float32], float, tuple[int, int]]:
    """The picture scaled to fit `size` (width, height), padded grey, as a 1x3xHxW RGB blob in 0..1."""
    width, height = size
    scale = min(width / image.shape[1], height / image.shape[0])
    fitted = cv2.resize(image, (round(image.shape[1] * scale), round(image.shape[0] * scale)))
    pad_x, pad_y = (width - fitted.shape[1]) // 2, (height - fitted.shape[0]) // 2
    canvas = np.full((height, width, 3), LETTERBOX_GREY, np.uint8)
    canvas[pad_y:pad_y + fitted.shape[0], pad_x:pad_x + fitted.shape[1]] = fitted
    blob = cv2.dnn.blobFromImage(canvas, 1 / 255.0, swapRB=True)
    return np.asarray(blob, np.float32), scale, (pad_x, pad_y)


def person_rows(output: NDArray[Any], person_class: int) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """(boxes cx, cy, w, h; person scores) from a YOLOv8-style (1, 4+C, N) or YOLOv5-style (1, N, 5+C) output."""
    across, down = output.shape[-2:]
    rows = output.reshape(across, down).astype(np.float32)
    if across < down:  # (4 + C, N): one column per candidate, no objectness
        rows = rows.T
        return rows[:, :4], rows[:, 4 + person_class]
    return rows[:, :4], rows[:, 4] * rows[:, 5 + person_class]


def _clip(xywh: list[float], shape: tuple[int, ...]) -> Box:
    x, y, w, h = xywh
    height, width = shape[:2]
    return (max(0, round(x)), max(0, round(y)), min(width, round(x + w)), min(height, round(y + h)))
