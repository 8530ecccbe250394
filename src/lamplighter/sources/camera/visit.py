"""When a camera fires: several frames in a row with a person, then once per visit.

A visit starts when `min_frames` analysed frames in a row show a person (in a zone, if any
are set); that is the moment to fire. It lasts while people keep being seen and ends once
nobody has been seen for `gap` seconds; only then can the next visit fire. Pure: the frame
times come in, what to do comes out.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Action(StrEnum):
    FIRE = "fire"  # a visit starts: the lamp should turn on
    END = "end"  # the visit is over: resolve what FIRE started


@dataclass
class VisitTracker:
    min_frames: int
    gap: float
    streak: int = 0  # frames in a row with a person, before a visit starts
    visit_since: float | None = None  # when the current visit fired; None: no visit
    last_seen: float | None = None  # the last frame with a person in the current visit

    @property
    def watching(self) -> bool:
        """Someone may be there: look at every frame, motion or not."""
        return self.streak > 0 or self.visit_since is not None

    def observe(self, t: float, person: bool) -> Action | None:
        """One analysed frame at time `t` (seconds, any origin that only moves forward)."""
        if self.visit_since is not None:
            if person:
                self.last_seen = t
                return None
            return self.expire(t)
        self.streak = self.streak + 1 if person else 0
        if self.streak < self.min_frames:
            return None
        self.streak, self.visit_since, self.last_seen = 0, t, t
        return Action.FIRE

    def close(self) -> Action | None:
        """End any open visit now (the video is over)."""
        if self.visit_since is None:
            return None
        self.visit_since = self.last_seen = None
        return Action.END

    def expire(self, t: float) -> Action | None:
        """End the visit if nobody has been seen for `gap` (also called while the camera is away)."""
        if self.last_seen is None or t - self.last_seen < self.gap:
            return None
        return self.close()
