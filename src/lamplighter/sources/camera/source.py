"""The camera source: a worker thread reads and analyses frames; the event loop submits events.

Decoding and detection never run on the event loop: one daemon thread per camera opens the
stream, analyses a few frames a second (pipeline.py) and posts what to do (health changes,
events) back to the loop. A stream that cannot be opened or stops delivering marks the
source blind and is reopened with backoff (1 s doubling to 60 s); an open visit ends once
nobody has been seen for `visit_gap`, also while the camera is away. A video file is played
once, then the source stops (not blind: it has seen all there was to see).

OpenCV's detection is told to use one thread: it must not take the cores the event loop
needs. Stopping waits for the worker to let go of the stream (a native thread still inside
FFmpeg when the interpreter exits aborts the process).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from lamplighter.backoff import Backoff
from lamplighter.errors import LamplighterError
from lamplighter.model import Clock, Event, make_event
from lamplighter.sources.base import Source, SourceHealth, SourceSettings, Submit
from lamplighter.sources.camera.settings import CameraSettings
from lamplighter.sources.camera.visit import Action

if TYPE_CHECKING:
    from lamplighter.sources.camera.detect import Detector, Image
    from lamplighter.sources.camera.pipeline import Analyser, FrameReport

log = logging.getLogger(__name__)

STOP_TIMEOUT = 6.0  # longer than stream.READ_TIMEOUT_MS, after which a stalled read gives up

Post = Callable[[Callable[[], object] | None], None]


class CameraSource(Source):
    source_type = "camera"
    Settings = CameraSettings

    def __init__(self, name: str, settings: SourceSettings, clock: Clock) -> None:
        super().__init__(name, settings, clock)
        assert isinstance(settings, CameraSettings)
        self.camera = settings
        self.backoff = Backoff()
        self.health = SourceHealth(connected=False, error="not connected to the camera yet")
        self.detector: Detector | None = None  # None: built from the settings in the worker
        self._visit_key = ""

    async def run(self, submit: Submit) -> None:
        loop = asyncio.get_running_loop()
        inbox: asyncio.Queue[Callable[[], object] | None] = asyncio.Queue()
        stop = threading.Event()

        def post(action: Callable[[], object] | None) -> None:
            try:
                loop.call_soon_threadsafe(inbox.put_nowait, action)
            except RuntimeError:  # the loop is closed: nobody is listening any more
                stop.set()

        worker = threading.Thread(target=self._work, args=(stop, post, submit), name=f"camera {self.name}",
                                  daemon=True)
        worker.start()
        try:
            while (action := await inbox.get()) is not None:
                try:
                    action()
                except LamplighterError as exc:
                    log.error("camera %s: %s", self.name, exc)
        finally:
            stop.set()  # the worker notices within a frame, or when a stalled read times out
            await asyncio.to_thread(worker.join, STOP_TIMEOUT)
            if worker.is_alive():
                log.warning("camera %s: the stream did not let go; leaving its thread behind", self.name)

    # ---- the worker thread -----------------------------------------------------------------

    def _work(self, stop: threading.Event, post: Post, submit: Submit) -> None:
        try:
            import cv2

            from lamplighter.sources.camera.pipeline import Analyser, build_detector
            from lamplighter.sources.camera.stream import StreamError

            cv2.setNumThreads(1)
            analyser = Analyser(self.camera, self.detector or build_detector(self.camera))
            while not stop.is_set():
                try:
                    self._watch(analyser, stop, post, submit)
                    if self.camera.is_file:
                        return
                except StreamError as exc:
                    post(partial(self.mark_disconnected, f"camera {self.camera.shown_url}: {exc}"))
                self._act(analyser.tracker.expire(time.monotonic()), None, post, submit)
                stop.wait(self.backoff.next())
        except Exception as exc:  # a bug or a broken model must not leave the source silently dead
            log.exception("camera %s stopped", self.name)
            post(partial(self.mark_disconnected, f"camera source stopped: {exc}"))
        finally:
            post(None)

    def _watch(self, analyser: Analyser, stop: threading.Event, post: Post, submit: Submit) -> None:
        """Analyse one connection's frames; returns when a file ends or `stop` is set."""
        from lamplighter.sources.camera.stream import open_capture, sampled_frames

        capture = open_capture(self.camera.url, self.camera.is_file)
        try:
            post(self.mark_connected)
            self.backoff.reset()
            analyser.motion.reset()
            for t, frame in sampled_frames(capture, self.camera.fps, self.camera.is_file, stop):
                report = analyser.analyse(t, frame)
                self._act(report.action, (report, frame), post, submit)
        finally:
            capture.release()
        if self.camera.is_file and not stop.is_set():
            self._act(analyser.tracker.close(), None, post, submit)
            log.info("camera %s: the video file %s has ended", self.name, self.camera.url)

    def _act(self, action: Action | None, seen: tuple[FrameReport, Image] | None, post: Post, submit: Submit) -> None:
        if action is Action.FIRE and seen is not None:
            post(partial(submit, self._arrived(*seen)))
        elif action is Action.END:
            post(partial(submit, self._left()))

    def _arrived(self, report: FrameReport, frame: Image) -> Event:
        """The firing event of a new visit, with a snapshot of the frame that completed it."""
        from lamplighter.sources.camera.pipeline import save_snapshot

        now = self.clock.now()
        self._visit_key = f"{self.name}:{now:.3f}"
        zones = sorted({zone for person in report.counted for zone in person.zones})
        best = max(report.counted, key=lambda person: person.score)
        labels = {"camera": self.name, "zones": ",".join(zones), "score": f"{best.score:.2f}"}
        folder = self._snapshot_folder()
        if folder is not None:
            try:
                path = save_snapshot(folder, frame, report.people, now, self.camera.snapshot_keep)
                labels["snapshot"] = str(path)
            except OSError as exc:
                log.warning("camera %s: no snapshot: %s", self.name, exc)
        where = f" ({', '.join(zones)})" if zones else ""
        return make_event(self.camera.level, f"person at {self.name}{where}", received_at=now, source=self.name,
                          sender=self.name, key=self._visit_key, labels=labels,
                          body=f"score {best.score:.2f}, {self.camera.min_frames} frame(s) in a row")

    async def picture(self, labels: Mapping[str, str]) -> bytes | None:
        """The JPEG saved when the visit began, only from this camera's snapshot folder."""
        from lamplighter.sources.pictures import read_picture

        folder, path = self._snapshot_folder(), labels.get("snapshot")
        if folder is None or not path:
            return None
        return await asyncio.to_thread(read_picture, Path(path), folder)

    def _snapshot_folder(self) -> Path | None:
        """`snapshot_dir`/NAME, else snapshots/ in the source's state directory (None outside a service)."""
        if self.camera.snapshot_dir is not None:
            return self.camera.snapshot_dir / self.name
        return None if self.state_dir is None else self.state_dir / "snapshots"

    def _left(self) -> Event:
        return make_event(self.camera.level, f"person at {self.name} left", received_at=self.clock.now(),
                          source=self.name, sender=self.name, key=self._visit_key, status="resolved")
