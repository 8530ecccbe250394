"""Zones: named polygons in frame pixels. A person is in a zone when their feet are.

"Feet" is the bottom centre of the detection box, as Frigate does it: a person walking past
behind the porch has their head in the porch polygon, not their feet.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from lamplighter.sources.camera.settings import Point

Box = tuple[int, int, int, int]  # x1, y1, x2, y2 in frame pixels


def feet(box: Box) -> Point:
    x1, _, x2, y2 = box
    return ((x1 + x2) / 2, float(y2))


def inside(point: Point, polygon: Sequence[Point]) -> bool:
    """Even-odd ray casting; a point on the edge may fall either way."""
    x, y = point
    hit = False
    for (x1, y1), (x2, y2) in zip(polygon, [*polygon[1:], polygon[0]], strict=True):
        if (y1 > y) != (y2 > y) and x < x1 + (y - y1) * (x2 - x1) / (y2 - y1):
            hit = not hit
    return hit


def zones_of(box: Box, zones: Mapping[str, Sequence[Point]]) -> tuple[str, ...]:
    """The zones whose polygon holds the box's feet, in the order they are configured."""
    spot = feet(box)
    return tuple(name for name, polygon in zones.items() if inside(spot, polygon))
