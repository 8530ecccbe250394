"""Delivery verification: did a lamp that can report its state really reach the look it was sent?

Devices round what they are told: a Hue bulb clamps red to its gamut, a LIFX bulb keeps
16-bit hue, a Zigbee light rounds brightness to 254 steps. So a read-back "reaches" the
sent state when it is on or off alike and, when on, shows the same colour to the eye: hue
within HUE_TOLERANCE degrees (for saturated colours), saturation within
SATURATION_TOLERANCE. Brightness is not compared: a native blink or pulse may be caught
at its dim end. Pure functions.
"""

from __future__ import annotations

import colorsys

from lamplighter.model import LampState

HUE_TOLERANCE = 30.0  # degrees
SATURATION_TOLERANCE = 0.3
SATURATED = 0.25  # below this, hue means little (whites, pastels)


def reached(sent: LampState, shown: LampState) -> bool:
    """Whether a lamp told to show `sent` and read back as `shown` shows it, to the eye."""
    if sent.on != shown.on:
        return False
    if not sent.on:
        return True
    sent_hue, sent_saturation = _hue_saturation(sent.color)
    shown_hue, shown_saturation = _hue_saturation(shown.color)
    if abs(sent_saturation - shown_saturation) > SATURATION_TOLERANCE:
        return False
    if min(sent_saturation, shown_saturation) < SATURATED:
        return True
    apart = abs(sent_hue - shown_hue) % 360
    return min(apart, 360 - apart) <= HUE_TOLERANCE


def describe(state: LampState) -> str:
    """A state in a few words, for messages: `#ff0000 at 100 %`, `off`."""
    return f"{state.color} at {state.brightness} %" if state.on else "off"


def _hue_saturation(color: str) -> tuple[float, float]:
    value = int(color.lstrip("#"), 16)
    red, green, blue = ((value >> shift) & 0xFF for shift in (16, 8, 0))
    hue, saturation, _ = colorsys.rgb_to_hsv(red / 255, green / 255, blue / 255)
    return hue * 360, saturation
