"""Exact restore: what a device reported, in its own terms, for each LampState a driver read back.

A LampState rounds: brightness to whole percents, colour to 8-bit RGB, and it has no word
for a LIFX white's kelvin, a Hue colour temperature or a WLED strip's palette. The
controller restores a lamp by applying the LampState that `read_state` returned, so a
driver remembers the device's native form of every state it returned and, when asked to
apply exactly that state again, sends the native form back instead of the rounded one.
The memory lives as long as the driver; a snapshot restored after a restart of the daemon
is applied from the LampState alone.
"""

from __future__ import annotations

from typing import Generic, TypeVar

from lamplighter.model import LampState

Native = TypeVar("Native")
KEEP = 8  # read-backs remembered; the controller needs two (at start, and the snapshot)


class Readings(Generic[Native]):
    """The native form of the last few states read back from one device."""

    def __init__(self) -> None:
        self._native: dict[LampState, Native] = {}

    def remember(self, state: LampState, native: Native) -> LampState:
        """Record that the device showing `native` was read back as `state`; return `state`."""
        self._native.pop(state, None)
        self._native[state] = native
        while len(self._native) > KEEP:
            del self._native[next(iter(self._native))]
        return state

    def native(self, state: LampState) -> Native | None:
        """The native form behind `state`, if this driver read it back, else None."""
        return self._native.get(state)
