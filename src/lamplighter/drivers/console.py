"""`console://[LABEL]`: prints every state change on standard output, one line each."""

from __future__ import annotations

import sys
from typing import TextIO

from lamplighter.drivers.base import Driver, LampUrl
from lamplighter.model import LAMP_OFF, Effect, LampState, Signal


def describe(state: LampState) -> str:
    """One short line a person reads: `on #ff0000 100% solid` or `off`."""
    return f"on {state.color} {state.brightness}% {state.effect}" if state.on else "off"


class ConsoleDriver(Driver):
    scheme = "console"
    min_interval = 0.0
    calm_interval = 0.0  # a screen may change as fast as it likes
    verify_after = None  # it shows what it was told, by construction
    effects = frozenset(Effect)

    def __init__(self, url: LampUrl, out: TextIO | None = None) -> None:
        super().__init__(url)
        self.out = out
        self.state = LAMP_OFF

    async def apply(self, state: LampState, showing: Signal | None = None) -> None:
        self.state = state
        out = self.out or sys.stdout
        out.write(f"lamp {self.lamp_url.host or 'console'}: {describe(state)}\n")
        out.flush()

    async def read_state(self) -> LampState:
        return self.state
