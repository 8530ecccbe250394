"""Camera: analysed frames/s and CPU share of the camera source with HOG, and time to the lamp.

1. Analysis (in this process, OpenCV on one thread, as the camera source runs it): the
   pipeline (shrink to the analysis width, motion gate, HOG, zones, visit logic) over
   generated frames as fast as it goes, at 640x480 and 1280x720, for a still scene (the
   motion gate skips HOG) and a person walking (HOG on every frame). 1280x720 is measured
   at the default analysis width (640 px, i.e. 640x360) and at full width. Decoding is not
   included here; it is in part 2.
2. Daemon: a real `lamplighter run` whose camera source reads a live MJPEG stream (15 fps,
   served from this process over loopback) and analyses 5 frames/s (the default) or 10:
   the daemon's CPU share (of one core) over --seconds, still scene and person walking.
3. Latency: the same daemon; a person steps onto the porch every few seconds; from the
   camera sending the first frame with the person in the zone to the lamp page's event
   stream turning green. This includes min_frames (3 frames in a row at 5 frames/s: the
   third comes 0.4 s after the first, by design) and the stream's buffering.

Scenes come from tests/scenes.py (textured garden, sensor noise, a human silhouette that
HOG recognises): there are no real recordings in the repository.

    .venv/bin/python bench/camera.py [--seconds 10] [--visits 10]

Writes bench/results/camera.json. Timings are reported, never asserted.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cv2

from bench._stats import (
    SseReader,
    cpu_seconds,
    daemon,
    format_summary,
    log_tail,
    machine,
    machine_line,
    summary_ms,
    write_results,
)
from lamplighter.sources.camera.detect import HogDetector
from lamplighter.sources.camera.pipeline import Analyser
from lamplighter.sources.camera.settings import CameraSettings
from tests.peers.mjpeg import MjpegCamera
from tests.scenes import Step, scene, still, walk

SIZES = ((640, 480), (1280, 720))
STREAM_FPS = 15
GREEN = "#00ff00"
LAMP = "desk"


def porch(width: int, height: int) -> list[list[int]]:
    """The bottom third of the picture, where the path meets the door."""
    return [[0, height * 2 // 3], [width, height * 2 // 3], [width, height], [0, height]]


def walking(width: int, height: int, frames: int) -> list[Step]:
    """A person walking across the lower picture and back: motion in every frame."""
    there = walk((width // 5, height * 3 // 4), (width * 4 // 5, height * 3 // 4), frames // 2)
    return there + there[::-1]


# ---- 1. the pipeline alone -------------------------------------------------------------------------


def analysis(width: int, height: int, moving: bool, analysis_width: int, frames: int) -> dict[str, Any]:
    pictures = scene(width, height, walking(width, height, frames) if moving else still(frames))
    settings = CameraSettings(type="camera", url="bench", width=analysis_width)
    analyser = Analyser(settings, HogDetector(settings.score_threshold))
    analyser.analyse(0.0, pictures[0])  # the first frame always runs the detector
    looked = found = 0
    wall, cpu = time.perf_counter(), time.process_time()
    for i, picture in enumerate(pictures[1:], start=1):
        report = analyser.analyse(i / 5, picture)
        looked += report.looked
        found += bool(report.people)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    count = len(pictures) - 1
    return {"size": f"{width}x{height}", "analysed_at": f"{analysis_width} px wide", "motion": moving,
            "frames": count, "fps": round(count / wall, 1), "cpu_ms_per_frame": round(cpu / count * 1000, 1),
            "detector_ran": looked, "frames_with_a_person": found}


# ---- 2. and 3. a real daemon -------------------------------------------------------------------------


def config(url: str, width: int, height: int, fps: int) -> str:
    return f"""\
lamps: {{{LAMP}: virtual://{LAMP}}}
guards:
  rate_limit:
    per_sender: {{every: 1ms, burst: 100000}}
    per_source: {{every: 1ms, burst: 100000}}
sources:
  - {{type: camera, name: porch, url: '{url}', fps: {fps}, visit_gap: 1s, zones: {{porch: {porch(width, height)}}}}}
"""


def wait_connected(d: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    with d.client() as client:
        while time.monotonic() < deadline:
            if all(source["connected"] for source in client.get("/api/sources").json()):
                return
            time.sleep(0.05)
    raise RuntimeError(f"the camera source did not connect: {log_tail(d)}")


def cpu_share(width: int, height: int, moving: bool, fps: int, seconds: float) -> dict[str, Any]:
    steps = walking(width, height, 4 * STREAM_FPS) if moving else still(STREAM_FPS)
    with MjpegCamera(scene(width, height, steps), fps=STREAM_FPS).start() as camera, \
            daemon("camera", config(camera.url, width, height, fps)) as d:
        assert d.process is not None
        wait_connected(d)
        time.sleep(2.0)  # past the stream's start and the first visit's events
        cpu, wall = cpu_seconds(d.process.pid), time.perf_counter()
        time.sleep(seconds)
        used, wall = (cpu_seconds(d.process.pid) or 0.0) - (cpu or 0.0), time.perf_counter() - wall
    return {"size": f"{width}x{height}", "motion": moving, "stream_fps": STREAM_FPS, "analysed_fps": fps,
            "cpu_share_of_one_core": round(used / wall, 3)}


def latency(width: int, height: int, visits: int) -> dict[str, Any]:
    """Each loop of the stream: 3 s of nobody, then 2 s of a person standing on the porch."""
    away, there = 3 * STREAM_FPS, 2 * STREAM_FPS
    steps = still(away) + [Step(person=(width // 2, height * 5 // 6))] * there
    first_person = away
    rows: list[float] = []
    problems: list[str] = []
    with MjpegCamera(scene(width, height, steps), fps=STREAM_FPS).start() as camera, \
            daemon("camera", config(camera.url, width, height, 5)) as d:
        wait_connected(d)
        sse = SseReader(d, LAMP)
        sse.open()
        for _ in range(visits + 1):  # the first loop may start mid-visit: skipped
            green, _ = sse.wait_for(lambda view: (view.get("state") or {}).get("color") == GREEN, timeout=15)
            if green is None:
                problems.append(f"no green within 15 s: {log_tail(d, 5)}")
                break
            sent = [at for index, at in camera.sent if index == first_person and at <= green[0]]
            if sent:
                rows.append(green[0] - sent[-1])
            off, _ = sse.wait_for(lambda view: not (view.get("state") or {}).get("on"), timeout=15)
            if off is None:
                problems.append("the lamp did not go back")
                break
        sse.close()
    measured = rows[1:]
    return {"size": f"{width}x{height}", "visits": len(measured),
            "first_person_frame_to_green_ms": summary_ms(measured), "problems": problems}


# ---- report -------------------------------------------------------------------------------------------


def run(seconds: float, visits: int) -> dict[str, Any]:
    info = machine()
    print(machine_line(info))
    cv2.setNumThreads(1)
    analysed = [analysis(w, h, moving, analysis_width, 40)
                for w, h in SIZES for analysis_width in sorted({640, w}) for moving in (False, True)]
    for row in analysed:
        print(f"analysis {row['size']} at {row['analysed_at']:<13} motion={row['motion']!s:<5} "
              f"{row['fps']:6.1f} frames/s  {row['cpu_ms_per_frame']:6.1f} ms CPU a frame  "
              f"(HOG ran on {row['detector_ran']}/{row['frames']}, found a person in {row['frames_with_a_person']})")
    daemons = [cpu_share(w, h, moving, fps, seconds) for w, h in SIZES for moving in (False, True) for fps in (5,)]
    daemons.append(cpu_share(640, 480, True, 10, seconds))
    for row in daemons:
        print(f"daemon {row['size']} motion={row['motion']!s:<5} stream {row['stream_fps']} fps, analysed "
              f"{row['analysed_fps']}/s: {row['cpu_share_of_one_core']:.0%} of one core")
    timed = latency(640, 480, visits)
    print(format_summary(f"first person frame -> lamp green, {timed['size']}", timed["first_person_frame_to_green_ms"]))
    for problem in timed["problems"]:
        print(f"PROBLEM: {problem}")
    return {"machine": info, "params": {"seconds": seconds, "visits": visits, "stream_fps": STREAM_FPS,
                                        "detector": "hog", "opencv_threads": 1},
            "analysis": analysed, "daemon": daemons, "latency": timed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="CPU measuring window per daemon (default 10)")
    parser.add_argument("--visits", type=int, default=10, help="measured visits for the latency (default 10)")
    args = parser.parse_args()
    path = write_results("camera", run(args.seconds, args.visits))
    print(f"results: {path}")


if __name__ == "__main__":
    main()
