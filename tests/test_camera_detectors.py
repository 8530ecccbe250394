"""The real detectors: OpenCV's HOG on generated scenes, and the ONNX path with tiny models built here.

There are no photographs in this repository, so HOG runs on generated 640x480 scenes
(tests/scenes.py: textured garden, noise, a car, a human silhouette). Its speed does not
depend on what is in the picture; bench/camera.py measures it properly.

The ONNX models are built with `onnx.helper` in a few nodes: they output fixed candidate
boxes whose scores are the picture's mean brightness times a weight, in the YOLOv8 layout
(1, 4 + C, N) and the YOLOv5 layout (1, N, 5 + C). That checks the letterbox, the mapping of
boxes back to frame pixels, the score threshold and non-maximum suppression, not a real model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from lamplighter.model import Outcome, Receipt, Status, SystemClock
from lamplighter.sources import build_sources
from lamplighter.sources.camera import CameraSource
from lamplighter.sources.camera.detect import HogDetector, OnnxDetector
from lamplighter.sources.camera.pipeline import Analyser, build_detector
from lamplighter.sources.camera.settings import CameraSettings
from tests.scenes import Step, scene, still, walk, write_video

W, H = 640, 480


def test_hog_sees_nobody_in_an_empty_scene_or_in_a_passing_car() -> None:
    frames = scene(W, H, still(5) + [Step(car=x) for x in range(0, W, 40)])
    analyser = Analyser(CameraSettings(type="camera", url="x", min_motion=0.0, min_frames=1), HogDetector(1.0))
    reports = [analyser.analyse(i / 5, frame) for i, frame in enumerate(frames)]
    assert all(report.looked for report in reports)
    assert [report.people for report in reports if report.people] == []


def test_hog_sees_a_person_walking_up_the_path() -> None:
    frames = scene(W, H, walk((200, 280), (330, 400), 8))
    found = [HogDetector(1.0).detect(frame) for frame in frames]
    assert all(len(people) == 1 for people in found)
    for (x1, _, x2, _), feet_x in zip((people[0].box for people in found), range(200, 331, 18), strict=False):
        assert x1 < feet_x < x2


async def test_the_camera_source_with_hog_fires_once_for_a_visit(tmp_path: Path) -> None:
    video = write_video(tmp_path / "door.avi", scene(W, H, still(5) + walk((200, 280), (330, 400), 15) + still(10)), 5)
    [source] = build_sources([{"type": "camera", "name": "door", "url": str(video), "visit_gap": "1s"}],
                             SystemClock()).values()
    assert isinstance(source, CameraSource)
    events = []

    def submit(event: object) -> Receipt:
        events.append(event)
        return Receipt(len(events), Outcome.SHOWN, (), None, None)

    await source.run(submit)  # type: ignore[arg-type]
    assert [e.status for e in events] == [Status.FIRING, Status.RESOLVED]  # type: ignore[attr-defined]


# ---- the ONNX path with tiny generated models -----------------------------------------------------------

SIZE = 64
# candidates (cx, cy, w, h in model input pixels) and score weights: the second overlaps the first
# and is suppressed; the third is too weak; the rest are nothing
CANDIDATES = [(32, 32, 20, 40, 1.0), (33, 32, 20, 40, 0.9), (10, 10, 8, 8, 0.3)] + [(0, 0, 0, 0, 0.0)] * 5


def tiny_yolo(path: Path, layout: str) -> Path:
    """A model whose candidates score the picture's mean brightness times their weight."""
    count = len(CANDIDATES)
    boxes = np.array([[c[:4] for c in CANDIDATES]], np.float32).transpose(0, 2, 1)  # (1, 4, N)
    weights = np.array([[[c[4] for c in CANDIDATES]]], np.float32)  # (1, 1, N)
    nodes = [
        helper.make_node("ReduceMean", ["images"], ["mean"], axes=[1, 2, 3], keepdims=1),
        helper.make_node("Reshape", ["mean", "shape"], ["mean3"]),
        helper.make_node("Mul", ["mean3", "weights"], ["scores"]),
    ]
    initializers = [numpy_helper.from_array(boxes, "boxes"), numpy_helper.from_array(weights, "weights"),
                    numpy_helper.from_array(np.array([1, 1, 1], np.int64), "shape")]
    if layout == "v8":  # (1, 4 + 1 class, N)
        nodes.append(helper.make_node("Concat", ["boxes", "scores"], ["output0"], axis=1))
        shape = [1, 5, count]
    else:  # (1, N, 4 + objectness + 1 class), objectness = score, class = 1
        initializers.append(numpy_helper.from_array(np.ones((1, 1, count), np.float32), "ones"))
        nodes += [helper.make_node("Concat", ["boxes", "scores", "ones"], ["rows"], axis=1),
                  helper.make_node("Transpose", ["rows"], ["output0"], perm=[0, 2, 1])]
        shape = [1, count, 6]
    graph = helper.make_graph(nodes, "tiny_yolo",
                              [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, SIZE, SIZE])],
                              [helper.make_tensor_value_info("output0", TensorProto.FLOAT, shape)], initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize("layout", ["v8", "v5"])
def test_an_onnx_model_finds_people_in_frame_pixels(tmp_path: Path, layout: str) -> None:
    detector = OnnxDetector(tiny_yolo(tmp_path / "tiny.onnx", layout), min_score=0.5)
    white = np.full((96, 128, 3), 255, np.uint8)  # letterboxed to 64x48 with 8 grey rows above and below
    [person] = detector.detect(white)
    # (cx 32, cy 32, w 20, h 40) in the model's input is (22, 12)-(42, 52); minus the padding, times 2
    assert person.box == (44, 8, 84, 88)
    assert person.score == pytest.approx((48 * 1.0 + 16 * 114 / 255) / 64, abs=0.01)
    assert detector.detect(np.zeros((96, 128, 3), np.uint8)) == []  # too dark: every score below 0.5


def test_a_model_in_the_settings_selects_the_onnx_detector(tmp_path: Path) -> None:
    model = tiny_yolo(tmp_path / "tiny.onnx", "v8")
    settings = CameraSettings(type="camera", url="x", model=str(model), min_frames=1, min_motion=0.0)
    detector = build_detector(settings)
    assert isinstance(detector, OnnxDetector) and detector.min_score == 0.5 and detector.size == (SIZE, SIZE)
    report = Analyser(settings, detector).analyse(0.0, np.full((480, 640, 3), 255, np.uint8))
    [person] = report.people
    assert person.box == (220, 40, 420, 440)  # 10 frame pixels per model pixel, 8 rows of letterbox on top
