"""An IP camera on loopback: an MJPEG stream over HTTP (multipart/x-mixed-replace), paced in real time.

Most cheap IP cameras offer exactly this next to RTSP, and OpenCV's FFmpeg reads it like any
stream. `stop()` closes the open connections too, as a camera that loses power does;
`start()` again listens on the same port, so a client can reconnect.

    with MjpegCamera(frames, fps=10).start() as camera:
        url = camera.url               # http://127.0.0.1:PORT/video.mjpg
        camera.sent                    # (frame index, time.perf_counter()) of every frame sent
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from tests.daemon import free_port

BOUNDARY = "frame"


class MjpegCamera:
    def __init__(self, frames: Sequence[NDArray[np.uint8]], fps: float = 10.0, loop: bool = True) -> None:
        self.jpegs = [cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 85])[1].tobytes() for frame in frames]
        self.fps = fps
        self.loop = loop
        self.port = free_port()
        self.sent: list[tuple[int, float]] = []
        self._server: ThreadingHTTPServer | None = None
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/video.mjpg"

    def start(self) -> MjpegCamera:
        camera = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
                self.end_headers()
                with camera._lock:
                    camera._connections.add(self.connection)
                with contextlib.suppress(OSError):
                    camera._stream(self.wfile)

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="mjpeg camera", daemon=True).start()
        return self

    def _stream(self, out: Any) -> None:
        started, index = time.monotonic(), 0
        while self.loop or index < len(self.jpegs):
            jpeg = self.jpegs[index % len(self.jpegs)]
            out.write(f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n".encode()
                      + jpeg + b"\r\n")
            out.flush()
            self.sent.append((index % len(self.jpegs), time.perf_counter()))
            index += 1
            time.sleep(max(0.0, started + index / self.fps - time.monotonic()))

    def stop(self) -> None:
        """Stop listening and cut every open stream, like a camera losing power."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        with self._lock:
            for connection in self._connections:
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
            self._connections.clear()

    def __enter__(self) -> MjpegCamera:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
