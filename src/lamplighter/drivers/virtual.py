"""`virtual://NAME`: a lamp that lives in memory and is shown as a web page at /lamp/NAME.

Any old tablet or second screen becomes the lamp. The URL may give the lamp's own
state before any signal (`virtual://desk?on=true&color=warmwhite&brightness=40`),
which is what the lamp returns to afterwards.
"""

from __future__ import annotations

from lamplighter.drivers.base import Driver, LampUrl
from lamplighter.errors import LampUrlError
from lamplighter.model import LAMP_OFF, Effect, LampState, Signal, parse_color

TRUE_WORDS = ("1", "true", "yes", "on")


class VirtualDriver(Driver):
    scheme = "virtual"
    min_interval = 0.0  # a change is a value in memory; pages get only the latest (service/broadcast.py)
    calm_interval = 0.0  # a screen may change as fast as it likes
    verify_after = None  # it shows what it was told, by construction
    effects = frozenset(Effect)

    def __init__(self, url: LampUrl, initial: LampState) -> None:
        super().__init__(url)
        self.state = initial

    @classmethod
    def from_url(cls, url: LampUrl) -> VirtualDriver:
        if not url.host:
            raise LampUrlError(url.text(), "needs a name: virtual://NAME")
        return cls(url, _initial_state(url))

    async def apply(self, state: LampState, showing: Signal | None = None) -> None:
        self.state = state

    async def read_state(self) -> LampState:
        return self.state


def _initial_state(url: LampUrl) -> LampState:
    unknown = {k for k, _ in url.query} - {"on", "color", "brightness"}
    if unknown:
        raise LampUrlError(url.text(), f"unknown option {sorted(unknown)[0]!r} (use on, color, brightness)")
    if not url.query:
        return LAMP_OFF
    try:
        brightness = int(url.param("brightness", "100"))
        color = parse_color(url.param("color", "white"))
    except ValueError as exc:
        raise LampUrlError(url.text(), str(exc)) from None
    if not 0 <= brightness <= 100:
        raise LampUrlError(url.text(), "brightness must be 0-100")
    return LampState(on=url.param("on", "true").lower() in TRUE_WORDS, color=color, brightness=brightness)
