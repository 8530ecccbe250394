"""Blink and pulse for lamps that cannot do them: the solid frames a lamp controller shows in turn.

A device with a native effect (LIFX waveforms, Hue signaling, WLED effects, Yeelight flows)
is given the effect itself. Any other lamp gets it drawn as two solid frames, switched in
time by its controller, with the same rhythm as the native ones and the lamp page:

    blink: the colour for 0.5 s, dark for 0.5 s
    pulse: the colour for 1 s, dimmed to 35 % for 1 s

A device slower than that (its driver's `min_interval`) gets slower frames, never more
commands than it accepts. Pure functions: the controller passes the time.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, replace

from lamplighter.model import Effect, LampState

BLINK_HALF_PERIOD = 0.5
PULSE_HALF_PERIOD = 1.0
PULSE_LOW = 0.35  # the dim frame's brightness, as a fraction of the colour's


@dataclass(frozen=True)
class Frames:
    """An emulated effect: `bright` and `dim` in turn, each for `half_period` seconds, bright first."""

    bright: LampState
    dim: LampState
    half_period: float

    def at(self, elapsed: float) -> tuple[LampState, float]:
        """The frame to show `elapsed` seconds after the effect started, and the seconds until the next."""
        into = max(elapsed, 0.0)
        number, into_frame = divmod(into, self.half_period)
        return (self.bright if int(number) % 2 == 0 else self.dim), self.half_period - into_frame


def emulation(look: LampState, native: Collection[Effect], min_interval: float) -> Frames | None:
    """The frames that draw `look`'s effect on a lamp lacking it; None when nothing needs emulating."""
    if not look.on or look.effect is Effect.SOLID or look.effect in native:
        return None
    bright = replace(look, effect=Effect.SOLID)
    if look.effect is Effect.BLINK:
        return Frames(bright, replace(bright, on=False), max(BLINK_HALF_PERIOD, min_interval))
    dim = replace(bright, brightness=max(1, round(look.brightness * PULSE_LOW)))
    return Frames(bright, dim, max(PULSE_HALF_PERIOD, min_interval))
