"""`yeelight://HOST[:PORT]`: a Yeelight Wi-Fi colour bulb over its LAN protocol, through the `yeelight` library.

The bulb speaks newline-delimited JSON over TCP 55443 ("LAN Control" must be switched on
in the Yeelight app). The driver keeps one connection open (the library's AsyncBulb); the
bulb announces every change on it, so the driver knows what the bulb shows without
asking, and a read within a few seconds of such news costs no command.

A colour goes at full value, its own value folded into the brightness. It changes at once:
`set_rgb` (or `set_hsv`, `set_ct_abx` to restore) and `set_bright` with the "sudden"
effect, each only when it differs from what the bulb shows. Those are refused while the
bulb is off, so a bulb that is off is switched on straight into the new look with one
`set_scene`: it never flashes its old colour.

Blink and pulse are the bulb's own colour flows (`start_cf`, repeating until replaced,
staying on the last step): blink a 1 s cycle between the colour and 1 % (the darkest a
flow step can be), pulse a 2 s swell down to 35 % of the brightness and back. Flows run
only while the bulb is on (`set_scene` starts one and switches the bulb on); the next
colour command stops them.

Restore is exact: power, colour mode (rgb, hsv or colour temperature), its values and
brightness are sent back as read. A bulb that was off gets its look back and is then
switched off, so it shows that look the next time someone switches it on. A flow the user
had running (a scene from the Yeelight app) is started again from its first step.

Yeelight allows 60 commands a minute per connection (144 in total, at most 4 connections)
and answers "client quota exceeded" beyond. The driver sends at most 55 a minute (the rest
is the library's keep-alive) and one change a second. Should the bulb still answer that
(another app used up the total), the command is sent again on a new connection after 1 s
and after 3 s more, then the change is reported as failed. Music mode is not used.

    yeelight://192.168.1.50       yeelight://bulb.local:55443?timeout=5
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from yeelight import BulbException
from yeelight.aio import AsyncBulb

from lamplighter.drivers.base import Driver, LampUrl
from lamplighter.drivers.color import from_hsv, to_hsv
from lamplighter.drivers.http import answer_of
from lamplighter.drivers.native import Readings
from lamplighter.drivers.options import TIMEOUT, address_only, check_options, timeout_option
from lamplighter.drivers.pacing import RateLimit
from lamplighter.errors import DeviceOffline, DriverError
from lamplighter.model import Effect, LampState, Signal

DEFAULT_PORT = 55443
DEFAULT_TIMEOUT = 3.0
QUOTA_WINDOW = 60.0  # seconds: the bulb counts commands per minute
COMMANDS_PER_WINDOW = 55  # of the 60 a connection may send: the rest is left to the library's keep-alive
QUOTA_EXCEEDED = "client quota exceeded"
QUOTA_RETRY_WAITS = (1.0, 3.0)  # seconds before each new try on a new connection
FRESH = 5.0  # seconds the bulb's own news of its state answers a read without a command
PROPS = ("power", "bright", "color_mode", "rgb", "ct", "hue", "sat", "flowing", "flow_params")
SUDDEN = ("sudden", 0)
COLOR_MODES = {1: "color", 2: "ct", 3: "hsv"}
SET_COLOR = {"color": "set_rgb", "ct": "set_ct_abx", "hsv": "set_hsv"}
FLOW = "cf"
FOREVER, STAY = 0, 1  # start_cf: repeat until replaced, and stay on the last step if it ever ends
COLOR_STEP, SLEEP_STEP = 1, 7
SHORTEST_STEP = 50  # ms: the least a flow step may last
DARKEST = 1  # the least brightness a bulb takes
PULSE_LOW = 0.35  # the dim end of a pulse, as on the lamp page
EXAMPLE = "yeelight://192.168.1.50"

Scene = tuple[str | int, ...]  # set_scene's arguments: ("color", rgb, bright), ("hsv", hue, sat, bright),
# ("ct", kelvin, bright) or ("cf", count, action, "duration,mode,value,brightness,...")
Command = tuple[str, list[Any]]


@dataclass(frozen=True)
class Look:
    """What a bulb shows, in its own terms: power, and the `set_scene` arguments that draw it."""

    on: bool
    scene: Scene


@dataclass(frozen=True)
class Shown:
    """What the bulb reports: power, the colour it shows, and the flow that draws it, if one runs."""

    on: bool
    color: Scene
    flow: Scene | None

    @property
    def look(self) -> Look:
        return Look(self.on, self.flow if self.on and self.flow else self.color)


class QuotaExceeded(Exception):
    """The bulb answered "client quota exceeded"."""


class YeelightDriver(Driver):
    scheme = "yeelight"
    min_interval = 1.0  # a change is up to two commands; the quota is one a second on average
    effects = frozenset(Effect)

    def __init__(self, url: LampUrl, timeout: float) -> None:
        super().__init__(url)
        self._port = url.port or DEFAULT_PORT
        self._timeout = timeout
        self._limit = RateLimit(COMMANDS_PER_WINDOW, QUOTA_WINDOW)
        self._readings: Readings[Look] = Readings()
        self._bulb: AsyncBulb | None = None
        self._connected = False
        self._props: dict[str, Any] = {}  # what the bulb last said of itself, on this connection
        self._heard_at = 0.0  # loop time of that

    @classmethod
    def from_url(cls, url: LampUrl) -> YeelightDriver:
        address_only(url, "yeelight://HOST[:PORT]", EXAMPLE)
        check_options(url, {TIMEOUT})
        return cls(url, timeout_option(url, DEFAULT_TIMEOUT))

    async def apply(self, state: LampState, showing: Signal | None = None) -> None:
        look = self._readings.native(state) or _look(state)
        shown = await self._shown(fresh_within=None)
        for method, params in _commands(look, shown):
            await self._command(method, params)

    async def read_state(self) -> LampState:
        shown = await self._shown(fresh_within=FRESH)
        return self._readings.remember(_lamp_state(shown), shown.look)

    async def close(self) -> None:
        await self._disconnect()

    async def _shown(self, fresh_within: float | None) -> Shown:
        """What the bulb shows: from its own news if that says it all (and is at most
        `fresh_within` seconds old), else asked with get_prop."""
        if not self._news_tells(fresh_within):
            values = await self._command("get_prop", list(PROPS))
            self._heard(dict(zip(PROPS, values, strict=False)))
        with answer_of(self.url(), "a Yeelight colour bulb's state"):
            return _shown(self._props)

    def _news_tells(self, fresh_within: float | None) -> bool:
        """Whether the bulb's news on the open connection covers every property (and is recent enough)."""
        age = asyncio.get_running_loop().time() - self._heard_at
        return self._connected and set(PROPS) <= self._props.keys() and (fresh_within is None or age < fresh_within)

    async def _command(self, method: str, params: list[Any]) -> list[Any]:
        """Send one command within the quota, and return its result; a bulb out of quota is
        asked again on a new connection after a pause."""
        for pause in (0.0, *QUOTA_RETRY_WAITS):
            await asyncio.sleep(pause)
            try:
                return await self._send(method, params)
            except QuotaExceeded:
                await self._disconnect()  # the library drops the connection after this answer
        raise DriverError(f"{self.url()} kept answering '{QUOTA_EXCEEDED}' to {method}")

    async def _send(self, method: str, params: list[Any]) -> list[Any]:
        bulb = await self._connect()
        await self._limit.wait()
        try:
            async with asyncio.timeout(self._timeout):
                answer = await bulb.async_send_command(method, params)
        except TimeoutError:
            await self._disconnect()
            raise DeviceOffline(f"{self.url()} did not answer within {self._timeout:g} s") from None
        except BulbException as exc:
            raise await self._failure(method, exc) from None
        with answer_of(self.url(), f"an answer to {method}"):
            return list(answer["result"])

    async def _failure(self, method: str, exc: BulbException) -> Exception:
        """The error for a command that failed: refused by the bulb, or the connection lost."""
        error = exc.args[0] if exc.args else None
        if not isinstance(error, dict):  # the library's own words: the connection is gone
            await self._disconnect()
            return DeviceOffline(f"lost the connection to {self.url()}")
        message = str(error.get("message", error))
        if message == QUOTA_EXCEEDED:
            return QuotaExceeded()
        return DriverError(f"{self.url()} refused {method}: {message}")

    async def _connect(self) -> AsyncBulb:
        """The open connection to the bulb, opened anew when it was lost."""
        if self._bulb is not None and self._connected:
            return self._bulb
        await self._disconnect()
        bulb = AsyncBulb(self.lamp_url.host.strip("[]"), port=self._port)
        try:
            async with asyncio.timeout(self._timeout):
                await bulb.async_listen(partial(self._on_news, bulb))
        except (TimeoutError, BulbException):
            await bulb.async_stop_listening()
            raise DeviceOffline(f"cannot connect to {self.url()}") from None
        self._bulb, self._connected = bulb, True
        return bulb

    async def _disconnect(self) -> None:
        bulb, self._bulb, self._connected, self._props = self._bulb, None, False, {}
        if bulb is not None:
            await bulb.async_stop_listening()

    def _on_news(self, bulb: AsyncBulb, news: dict[str, Any]) -> None:
        """The library's callback: a `props` notification, or the connection opened or lost."""
        if bulb is not self._bulb:
            return
        if news.get("connected") is False:
            self._connected = False
        self._heard({k: v for k, v in news.items() if k in PROPS})

    def _heard(self, props: Mapping[str, Any]) -> None:
        if props:
            self._props.update(props)
            self._heard_at = asyncio.get_running_loop().time()


def _commands(look: Look, shown: Shown) -> list[Command]:
    """The commands that take a bulb showing `shown` to `look`."""
    if look.on and not shown.on:
        return [("set_scene", list(look.scene))]
    changes = _changes(look.scene, shown) if shown.on else []
    return changes if look.on else [*changes, ("set_power", ["off", *SUDDEN])]


def _changes(scene: Scene, shown: Shown) -> list[Command]:
    """The sudden commands that take a bulb that is on from `shown` to `scene`; a running
    flow is replaced whole (any command stops it)."""
    if scene[0] == FLOW:
        return [] if scene == shown.flow else [("start_cf", list(scene[1:]))]
    kind, *values, bright = scene
    flowing = shown.flow is not None
    commands: list[Command] = []
    if flowing or shown.color[:-1] != scene[:-1]:
        commands.append((SET_COLOR[str(kind)], [*values, *SUDDEN]))
    if flowing or shown.color[-1] != bright:
        commands.append(("set_bright", [bright, *SUDDEN]))
    return commands


def _look(state: LampState) -> Look:
    """The look that shows `state`: its colour at full value, the value folded into the brightness."""
    hue, saturation, value = to_hsv(state.color)
    rgb = int(from_hsv(hue, saturation).lstrip("#"), 16)
    bright = min(max(round(value * state.brightness), DARKEST), 100)
    if state.on and state.effect is not Effect.SOLID:
        return Look(True, _flow(state.effect, rgb, bright))
    return Look(state.on, ("color", rgb, bright))


def _flow(effect: Effect, rgb: int, bright: int) -> Scene:
    """Our blink or pulse in one colour, as set_scene arguments: the colour at once, then the rhythm."""
    at_once = (SHORTEST_STEP, COLOR_STEP, rgb, bright)
    if effect is Effect.BLINK:
        steps = [at_once, (450, SLEEP_STEP, 0, 0), (SHORTEST_STEP, COLOR_STEP, rgb, DARKEST), (450, SLEEP_STEP, 0, 0)]
    else:
        low = max(round(bright * PULSE_LOW), DARKEST)
        steps = [at_once, (1000, COLOR_STEP, rgb, low), (1000, COLOR_STEP, rgb, bright)]
    return FLOW, FOREVER, STAY, ",".join(str(v) for step in steps for v in step)


def _our_flow(flow: Scene) -> tuple[Effect, int, int] | None:
    """The effect, colour and brightness of a flow that is our blink or pulse; None for any other."""
    first = str(flow[3]).split(",")[:4]
    if len(first) < 4:
        return None
    rgb, bright = int(first[2]), int(first[3])
    return next(((e, rgb, bright) for e in (Effect.BLINK, Effect.PULSE) if _flow(e, rgb, bright) == flow), None)


def _shown(props: Mapping[str, Any]) -> Shown:
    """The bulb's properties (strings from get_prop, numbers from notifications) as a Shown."""
    kind = COLOR_MODES[int(props["color_mode"])]
    values = {"color": (props["rgb"],), "ct": (props["ct"],), "hsv": (props["hue"], props["sat"])}[kind]
    color: Scene = (kind, *(int(v) for v in values), int(props["bright"]))
    flowing = str(props.get("flowing")) == "1" and props.get("flow_params")
    return Shown(props["power"] == "on", color, _flow_of(str(props["flow_params"])) if flowing else None)


def _flow_of(flow_params: str) -> Scene:
    """`flow_params` as the bulb reports them ("count,action,duration,mode,value,brightness,...") as a Scene."""
    count, action, *steps = (int(v) for v in flow_params.split(","))
    return FLOW, count, action, ",".join(str(v) for v in steps)


def _lamp_state(shown: Shown) -> LampState:
    ours = _our_flow(shown.flow) if shown.flow else None
    if ours is not None:
        effect, rgb, bright = ours
        return LampState(on=shown.on, color=_hex(rgb), brightness=bright, effect=effect)
    kind, *values, level = shown.color
    return LampState(on=shown.on, color=_color_of(str(kind), [int(v) for v in values]), brightness=int(level))


def _color_of(kind: str, values: list[int]) -> str:
    """A colour mode's values as `#rrggbb`; a colour temperature is white (its kelvin is kept natively)."""
    if kind == "color":
        return _hex(values[0])
    if kind == "hsv":
        return from_hsv(values[0], values[1] / 100)
    return "#ffffff"


def _hex(rgb: int) -> str:
    return f"#{rgb & 0xFFFFFF:06x}"
