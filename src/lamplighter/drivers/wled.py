"""`wled://HOST[:PORT]`: a WLED strip through its JSON API (`GET` and `POST /json/state`).

Every change is one POST with `tt: 0`, a zero transition for that change only, so the
user's own default transition is left alone. It covers every segment the strip has:
power, brightness, primary colour and effect, with per-segment brightness, power and
freeze overridden so the whole strip shows the alert. Blink and pulse are WLED's own
effects 1 (Blink, a 1 s cycle against black) and 2 (Breathe, a 2 s cycle down to 35 %).

WLED cannot restore a previous state by itself, and serves one request at a time: the
driver keeps the whole state (power, brightness, every segment's colours, effect, speed,
intensity, palette, freeze) and posts exactly that to restore it, one request in flight,
at most ten a second. It keeps that state current from WLED's websocket (`/ws`), which
pushes the whole state on connect and after every change, so the first alert is sent
without a read in front of it; while the websocket is down (or on a WLED built without
it) the state is read with a GET before the first alert instead.

    wled://10.0.0.31           wled://strip.local:8080?timeout=5
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aiohttp

from lamplighter.drivers.base import Driver, LampUrl
from lamplighter.drivers.color import percent, scale, to_hex, to_rgb
from lamplighter.drivers.http import HttpDevice, answer_of
from lamplighter.drivers.native import Readings
from lamplighter.drivers.options import TIMEOUT, check_options, require, timeout_option
from lamplighter.drivers.pacing import RateLimit
from lamplighter.drivers.push import MAX_PUSH_BYTES, PushStream, parse_report
from lamplighter.errors import LampUrlError
from lamplighter.model import Effect, LampState, Signal

DEFAULT_TIMEOUT = 3.0
REQUESTS_PER_SECOND = 10
FULL = 255
BLACK = [0, 0, 0]
PULSE_LOW = 0.35  # the dim end of a pulse, as on the lamp page
EFFECT_IDS = {Effect.SOLID: 0, Effect.BLINK: 1, Effect.PULSE: 2}
EFFECTS_BY_ID = {number: effect for effect, number in EFFECT_IDS.items()}
SPEEDS = {Effect.SOLID: 128, Effect.BLINK: 205, Effect.PULSE: 184}  # Blink: (255-sx)*20 ms; Breathe: ~2 s
RESTORED_SEGMENT_KEYS = ("on", "bri", "frz", "col", "fx", "sx", "ix", "pal")
HEARTBEAT = 10.0  # seconds between websocket pings: a strip that lost power is noticed within two

Body = dict[str, Any]


class WledDriver(Driver):
    scheme = "wled"
    min_interval = 1 / REQUESTS_PER_SECOND
    effects = frozenset(Effect)
    pushes_state = True

    def __init__(self, url: LampUrl, timeout: float) -> None:
        super().__init__(url)
        port = f":{url.port}" if url.port else ""
        self._state_url = f"http://{url.host}{port}/json/state"
        self._socket_url = f"ws://{url.host}{port}/ws"
        self._timeout = timeout
        self._device = HttpDevice(self.url(), RateLimit(REQUESTS_PER_SECOND), timeout)
        self._readings: Readings[Body] = Readings()
        self._segments: tuple[int, ...] = (0,)
        self._stream = PushStream(self.url(), self._listen, lambda _: self.tell(None))

    @classmethod
    def from_url(cls, url: LampUrl) -> WledDriver:
        require(url, "the strip's address", url.host, "wled://10.0.0.31")
        if url.path not in ("", "/") or url.user:
            raise LampUrlError(url.text(), "takes only an address: wled://HOST[:PORT]")
        check_options(url, {TIMEOUT})
        return cls(url, timeout_option(url, DEFAULT_TIMEOUT))

    async def apply(self, state: LampState, showing: Signal | None = None) -> None:
        body = self._readings.native(state) or _command(state, self._segments)
        await self._device.request("POST", self._state_url, {**body, "tt": 0})

    async def read_state(self) -> LampState:
        data = await self._device.request("GET", self._state_url)
        with answer_of(self.url(), "WLED's state"):
            return self._take(data)

    async def start(self) -> None:
        self._stream.start()

    async def close(self) -> None:
        await self._stream.stop()
        await self._device.close()

    def _take(self, data: Body) -> LampState:
        """What the strip shows, from its whole state; remembered in WLED's own terms for an exact restore."""
        segments = data["seg"]
        self._segments = tuple(int(s["id"]) for s in segments) or (0,)
        shown = _lamp_state(data, _main_segment(data))
        restore = {"on": data["on"], "bri": data["bri"], "seg": [_restorable(s) for s in segments]}
        return self._readings.remember(shown, restore)

    async def _listen(self, up: Callable[[], None]) -> None:
        """One websocket session: every message with the whole state is what the strip shows now."""
        timeout = aiohttp.ClientTimeout(sock_connect=self._timeout)
        async with aiohttp.ClientSession(timeout=timeout) as session, session.ws_connect(
                self._socket_url, heartbeat=HEARTBEAT, max_msg_size=MAX_PUSH_BYTES) as socket:
            up()
            async for message in socket:
                if message.type is not aiohttp.WSMsgType.TEXT:
                    continue
                report = parse_report(message.data, self.url())
                if isinstance(report, dict) and isinstance(report.get("state"), dict):
                    try:
                        self.tell(self._take(report["state"]))
                    except (KeyError, TypeError, ValueError, IndexError):
                        self.tell(None)  # not WLED's state after all: read the strip instead


def _command(state: LampState, segments: tuple[int, ...]) -> Body:
    """The POST body that makes every segment show `state`."""
    if not state.on:
        return {"on": False}
    rgb = list(to_rgb(state.color))
    second = [round(c * PULSE_LOW) for c in rgb] if state.effect is Effect.PULSE else BLACK
    segment = {"on": True, "bri": FULL, "frz": False, "col": [rgb, second], "fx": EFFECT_IDS[state.effect],
               "sx": SPEEDS[state.effect], "ix": 128, "pal": 0}
    return {"on": True, "bri": round(scale(state.brightness, FULL)), "seg": [{"id": i, **segment} for i in segments]}


def _main_segment(data: Body) -> Body:
    segments: list[Body] = data["seg"]
    main = data.get("mainseg", 0)
    return next((s for s in segments if s.get("id") == main), segments[0])


def _lamp_state(data: Body, segment: Body) -> LampState:
    red, green, blue = segment["col"][0][:3]
    return LampState(on=bool(data["on"]), color=to_hex((red, green, blue)), brightness=percent(data["bri"], FULL),
                     effect=EFFECTS_BY_ID.get(segment.get("fx", 0), Effect.SOLID))


def _restorable(segment: Body) -> Body:
    return {"id": segment["id"], **{k: segment[k] for k in RESTORED_SEGMENT_KEYS if k in segment}}
