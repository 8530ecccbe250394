"""`wiz://HOST[:PORT]`: a WiZ colour bulb over its local protocol (JSON over UDP, port 38899), through pywizlight.

A colour is one `setPilot` with `state`, `r`, `g`, `b`, `w: 0` (the warm-white LED off, as
pywizlight sends a pure colour) and `dimming`: the colour goes at full value, its own
value folded into the dimming, which WiZ takes from 10 to 100 %. WiZ has no transition
parameter: a bulb's fade-in and fade-out times (`fadeIn`/`fadeOut` in its user config,
set in the WiZ app) soften switching on and off, and are left as the user set them.

WiZ scenes are fixed light programmes, not a blink or pulse of any colour, so the lamp
controller draws blink and pulse as solid frames. Restore is exact: the pilot read back is
sent back in the bulb's own terms, a scene (`sceneId`, then `speed` alone, since a bulb
ignores a speed sent with `state`), a white (`temp` in kelvin) or a colour (`r`, `g`, `b`,
`c`, `w`), with its dimming; a bulb that was off is given its look and then switched off,
so the next switch-on shows what it showed before, not the alert.

WiZ publishes no rate limit. A bulb answers every command and drops datagrams when flooded,
so one command is in flight at a time (pywizlight's lock) and at most five a second go to a
bulb: enough for the emulated blink (two a second), little enough for a Wi-Fi bulb.

    wiz://192.168.1.60       wiz://bulb.local:38899?timeout=5
"""

from __future__ import annotations

import asyncio
from typing import Any

from pywizlight import wizlight
from pywizlight.exceptions import WizLightError, WizLightTimeOutError

from lamplighter.drivers.base import Driver, LampUrl
from lamplighter.drivers.color import from_hsv, to_hex, to_hsv, to_rgb
from lamplighter.drivers.http import answer_of
from lamplighter.drivers.native import Readings
from lamplighter.drivers.options import TIMEOUT, address_only, check_options, timeout_option
from lamplighter.drivers.pacing import RateLimit
from lamplighter.errors import DeviceOffline, DriverError
from lamplighter.model import LampState, Signal

DEFAULT_PORT = 38899
DEFAULT_TIMEOUT = 3.0  # pywizlight sends a datagram again after 0.75 s and 2.25 s without an answer
MESSAGES_PER_SECOND = 5
DIMMING_MIN, DIMMING_MAX = 10, 100
COLOR_KEYS = ("r", "g", "b", "c", "w")
EXAMPLE = "wiz://192.168.1.60"

Params = dict[str, Any]
Pilot = dict[str, Any]


class WizDriver(Driver):
    scheme = "wiz"
    min_interval = 1 / MESSAGES_PER_SECOND

    def __init__(self, url: LampUrl, timeout: float) -> None:
        super().__init__(url)
        self._timeout = timeout
        self._limit = RateLimit(MESSAGES_PER_SECOND)
        self._readings: Readings[list[Params]] = Readings()  # the setPilots that bring a look back
        self._bulb: Any = None  # pywizlight's wizlight, made in the event loop on first use

    @classmethod
    def from_url(cls, url: LampUrl) -> WizDriver:
        address_only(url, "wiz://HOST[:PORT]", EXAMPLE)
        check_options(url, {TIMEOUT})
        return cls(url, timeout_option(url, DEFAULT_TIMEOUT))

    async def apply(self, state: LampState, showing: Signal | None = None) -> None:
        for params in self._readings.native(state) or [_command(state)]:
            await self._send("setPilot", params)

    async def read_state(self) -> LampState:
        answer = await self._send("getPilot", {})
        with answer_of(self.url(), "a WiZ pilot"):
            pilot: Pilot = answer["result"]
            return self._readings.remember(_lamp_state(pilot), _restoring(pilot))

    async def close(self) -> None:
        if self._bulb is not None:
            await self._bulb.async_close()
            self._bulb = None

    async def _send(self, method: str, params: Params) -> Params:
        """One request and its answer, within the rate limit and the timeout."""
        if self._bulb is None:
            self._bulb = wizlight(self.lamp_url.host, port=self.lamp_url.port or DEFAULT_PORT)
        await self._limit.wait()
        try:
            async with asyncio.timeout(self._timeout):
                answer: Params = await self._bulb.send({"method": method, "params": params})
        except TimeoutError:
            raise self._silent() from None
        except OSError as exc:  # the address does not resolve, or no route to it
            raise DeviceOffline(f"cannot reach {self.url()} ({type(exc).__name__})") from None
        except WizLightError as exc:
            raise self._failure(exc) from None
        return answer

    def _silent(self) -> DeviceOffline:
        return DeviceOffline(f"{self.url()} did not answer within {self._timeout:g} s")

    def _failure(self, exc: WizLightError) -> DriverError:
        if isinstance(exc, WizLightTimeOutError):
            return self._silent()
        if isinstance(exc.__cause__, OSError):  # e.g. the bulb's port is closed: ICMP port unreachable
            return DeviceOffline(f"cannot reach {self.url()} ({type(exc.__cause__).__name__})")
        return DriverError(f"{self.url()} refused the command ({type(exc).__name__})")


def _command(state: LampState) -> Params:
    """The setPilot params that make the bulb show `state` (a colour at full value, dimmed)."""
    hue, saturation, value = to_hsv(state.color)
    if not state.on or value == 0:
        return {"state": False}
    red, green, blue = to_rgb(from_hsv(hue, saturation))
    dimming = min(max(round(value * state.brightness), DIMMING_MIN), DIMMING_MAX)
    return {"state": True, "r": red, "g": green, "b": blue, "w": 0, "dimming": dimming}


def _look(pilot: Pilot) -> Params:
    """The setPilot params of what the bulb shows: a scene, a white or a colour, and its dimming."""
    dimming = {"dimming": pilot["dimming"]} if "dimming" in pilot else {}
    if pilot.get("sceneId"):
        return {"sceneId": pilot["sceneId"], **dimming}
    if pilot.get("temp"):
        return {"temp": pilot["temp"], **dimming}
    return {**{k: pilot[k] for k in COLOR_KEYS if k in pilot}, **dimming}


def _restoring(pilot: Pilot) -> list[Params]:
    """The setPilots that bring the bulb back to `pilot`: its look (and scene speed), then off if it was off."""
    look = _look(pilot)
    messages: list[Params] = [{"state": True, **look}]
    if "sceneId" in look and "speed" in pilot:
        messages.append({"speed": pilot["speed"]})
    if not pilot["state"]:
        messages.append({"state": False})
    return messages


def _lamp_state(pilot: Pilot) -> LampState:
    return LampState(on=bool(pilot["state"]), color=_color(pilot), brightness=int(pilot.get("dimming", DIMMING_MAX)))


def _color(pilot: Pilot) -> str:
    """The colour at full value; white for a scene, a white temperature or the white LEDs alone."""
    rgb = (int(pilot.get("r", 0)), int(pilot.get("g", 0)), int(pilot.get("b", 0)))
    if pilot.get("sceneId") or pilot.get("temp") or max(rgb) == 0:
        return "#ffffff"
    hue, saturation, _ = to_hsv(to_hex(rgb))
    return from_hsv(hue, saturation)
