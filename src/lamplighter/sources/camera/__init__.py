"""The built-in camera source (`type: camera`): OpenCV reads a stream, a detector looks for people.

    settings.py  the `sources:` keys (no OpenCV needed to check them)
    stream.py    open a stream or file, sample a few frames a second
    motion.py    the cheap motion gate in front of the detector
    detect.py    the detector interface: HOG by default, a YOLO-style ONNX model optionally
    zones.py     polygons in frame pixels; a person is where their feet are
    visit.py     several frames in a row before firing; once per visit, ended by a gap
    pipeline.py  one frame through all of the above; the snapshot JPEG
    source.py    the Source: a worker thread per camera, events submitted on the loop
    tool.py      `lamplighter camera test SOURCE`
"""

from lamplighter.sources.camera.source import CameraSource

__all__ = ["CameraSource"]
