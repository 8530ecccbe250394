"""Frames from a camera stream or a video file, sampled to a few per second.

OpenCV (with its bundled FFmpeg) reads RTSP, HTTP/MJPEG and files. Every frame is grabbed
(a stream must be drained or it lags), but only the sampled ones are converted to pictures.
A file is timed by its own clock (so a test run is the same at any speed); a live stream by
the monotonic clock. A stream that cannot be opened or stops delivering raises StreamError.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import cv2
import numpy as np
from numpy.typing import NDArray

OPEN_TIMEOUT_MS = 10_000
READ_TIMEOUT_MS = 5_000  # a camera silent this long is gone; also bounds how long stopping can take
EARLY = 0.001  # a frame due at 0.2 s that says 0.19999 is on time


class StreamError(Exception):
    """The camera could not be opened or stopped delivering frames."""


Frame = tuple[float, NDArray[np.uint8]]


def open_capture(url: str, is_file: bool) -> cv2.VideoCapture:
    path = url.removeprefix("file://") if is_file else url
    timeouts = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, OPEN_TIMEOUT_MS, cv2.CAP_PROP_READ_TIMEOUT_MSEC, READ_TIMEOUT_MS]
    capture = cv2.VideoCapture(path, cv2.CAP_FFMPEG, timeouts)
    if not capture.isOpened():
        capture.release()
        raise StreamError("cannot open the stream" if not is_file else f"cannot open the video file {path}")
    return capture


def sampled_frames(capture: cv2.VideoCapture, fps: float, is_file: bool, stop: threading.Event) -> Iterator[Frame]:
    """(time, picture) about `fps` times a second until `stop` is set or a file ends; StreamError if a stream stops."""
    period, due = 1.0 / fps, 0.0
    while not stop.is_set():
        if not capture.grab():
            if is_file:
                return
            raise StreamError("the stream stopped delivering frames")
        now = capture.get(cv2.CAP_PROP_POS_MSEC) / 1000 if is_file else time.monotonic()
        if now + EARLY < due:
            continue
        ok, picture = capture.retrieve()
        if not ok:
            raise StreamError("a frame could not be decoded")
        due = due + period if now + EARLY < due + period else now + period  # late or first: restart the beat
        yield now, np.asarray(picture, np.uint8)
