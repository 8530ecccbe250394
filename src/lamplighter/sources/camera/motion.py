"""The motion gate: a cheap look at a small grey picture decides whether to run the detector.

The background is a running average, so slow changes (clouds, dusk) fade in without
counting as motion; a pixel that differs from it by more than DIFF_LEVEL counts as changed.
"""

from __future__ import annotations

import cv2
import numpy as np
from numpy.typing import NDArray

GATE_WIDTH = 160  # pixels across the picture the gate looks at
DIFF_LEVEL = 25  # grey levels (of 255) a pixel must change by
LEARN_RATE = 0.1  # how fast the background follows the scene


class MotionGate:
    def __init__(self) -> None:
        self.background: NDArray[np.float32] | None = None

    def reset(self) -> None:
        """Forget the background (after a reconnect the scene may have changed)."""
        self.background = None

    def changed(self, image: NDArray[np.uint8]) -> float:
        """The share of the picture that changed since the background; 1.0 for the first picture."""
        height, width = image.shape[:2]
        small = cv2.resize(image, (GATE_WIDTH, max(1, height * GATE_WIDTH // width)), interpolation=cv2.INTER_AREA)
        grey = cv2.GaussianBlur(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY), (5, 5), 0)
        if self.background is None:
            self.background = grey.astype(np.float32)
            return 1.0
        moved = cv2.absdiff(grey, cv2.convertScaleAbs(self.background)) > DIFF_LEVEL
        cv2.accumulateWeighted(grey, self.background, LEARN_RATE)
        return float(np.count_nonzero(moved)) / moved.size
