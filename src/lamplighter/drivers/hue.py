"""`hue://APPKEY@BRIDGE[:PORT]/lights/ID` or `/groups/ID`: a Hue light or room through the bridge's v2 API.

APPKEY is the application key the bridge handed out when its link button was pressed (the
old API's "username"). ID is the number the Hue app and the old API use (`/lights/3`,
`/groups/1`), or the resource's v2 id.

Every command is one PUT to `/clip/v2/resource/light/ID` (a group: `grouped_light/ID`)
with `dynamics.duration: 0`, so alert colours change at once instead of in 400 ms. Blink
is the bridge's own `signaling` (`on_off_color`) where the light or group lists it; a
blink we started is stopped (`no_signal`) before anything else is shown. Pulse has no
bridge equivalent and shows as the steady colour.

Every lamp on one bridge (same address and application key) shares one connection and one
pacing: at most 10 requests a second go to the bridge, one at a time, and at most one group
command a second, Hue's guidance, however many lamps it drives; beyond it the bridge answers
429, which is waited out a few times before the change is reported as failed. (The first
lamp's `timeout` is the bridge's.)

A light keeps its state from the bridge's event stream (`/eventstream/clip/v2`), one per
bridge, which tells every change whoever made it (the Hue app, a dimmer, us), so the first
alert is sent without a read in front of it. While the stream is down the light is read
first instead. A group (room, zone) is always read first: its state is its lights'.

Restore is exact: each light's power, brightness and colour (xy, or colour temperature in
mirek) read back are sent back; a group is read and restored light by light. The bridge's
certificate is signed by Signify's own authority, so it is not verified (as Home
Assistant's aiohue does not).

    hue://APPKEY@192.168.1.2/lights/3     hue://APPKEY@192.168.1.2/groups/1?timeout=5
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any, ClassVar

import aiohttp

from lamplighter.drivers.base import Driver, LampUrl
from lamplighter.drivers.color import from_xy, to_xy, value_of
from lamplighter.drivers.http import HttpDevice, answer_of
from lamplighter.drivers.native import Readings
from lamplighter.drivers.options import TIMEOUT, check_options, require, timeout_option
from lamplighter.drivers.pacing import RateLimit
from lamplighter.drivers.push import PushStream, Told, parse_report, server_sent_data
from lamplighter.drivers.shared import SharedHosts
from lamplighter.errors import DriverError, LampUrlError
from lamplighter.model import Effect, LampState, Signal

DEFAULT_TIMEOUT = 5.0
LIGHT_REQUESTS_PER_SECOND = 10
GROUP_COMMANDS_PER_SECOND = 1
API = "/clip/v2/resource"
EVENT_STREAM = "/eventstream/clip/v2"
LIGHT, GROUP = "light", "grouped_light"
BLINK_SIGNAL = "on_off_color"
SIGNAL_LONGEST_MS = 65_534_000  # the bridge's maximum; the next state stops it sooner
NO_SIGNAL = {"signaling": {"signal": "no_signal"}}
INSTANT = {"dynamics": {"duration": 0}}
EXAMPLE = "hue://APPKEY@192.168.1.2/lights/3"
PATH = re.compile(r"/(lights|groups)/(\d+|[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12})")
V1_PATHS = {LIGHT: "lights", GROUP: "groups"}
V2_API = "the Hue v2 API"

Resource = dict[str, Any]
Body = dict[str, Any]
Watcher = Callable[[Resource | None], None]


class HueBridge:
    """One bridge's v2 resources and event stream, shared by every lamp on it (drivers/shared.py)."""

    def __init__(self, url: LampUrl, timeout: float) -> None:
        port = f":{url.port}" if url.port else ""
        self.name = url.text()
        self.group_limit = RateLimit(GROUP_COMMANDS_PER_SECOND)
        self._base = f"https://{url.host}{port}"
        self._key = url.user
        self._timeout = timeout
        self._device = HttpDevice(self.name, RateLimit(LIGHT_REQUESTS_PER_SECOND), timeout, verify=False,
                                  headers={"hue-application-key": url.user})
        self._lights: Told[Resource] = Told()  # light id -> the light as the event stream left it
        self._stream = PushStream(self.name, self._listen, self._lost)

    async def get(self, rtype: str, rid: str = "") -> list[Resource]:
        path = f"{self._base}{API}/{rtype}/{rid}" if rid else f"{self._base}{API}/{rtype}"
        return self._data(await self._device.request("GET", path))

    async def put(self, rtype: str, rid: str, body: Body, also: RateLimit | None = None) -> None:
        self._data(await self._device.request("PUT", f"{self._base}{API}/{rtype}/{rid}", body, also))

    async def find(self, rtype: str, ident: str) -> Resource:
        """A light or grouped light by its v2 id or by the number the old API gave it."""
        path = f"/{V1_PATHS[rtype]}/{ident}"
        if ident.isdigit():
            found = [r for r in await self.get(rtype) if r.get("id_v1") == path]
        else:
            found = await self.get(rtype, ident)
        if not found:
            raise DriverError(f"{self.name}: the bridge has no {path}")
        return found[0]

    def watch(self, light_id: str, watcher: Watcher) -> None:
        """Call `watcher` with the whole light whenever the bridge tells a change, None while it cannot."""
        self._lights.watch(light_id, watcher)
        self._stream.start()

    async def close(self) -> None:
        await self._stream.stop()
        await self._device.close()

    async def _listen(self, up: Callable[[], None]) -> None:
        """One event stream session: the lights as they are now, then every change the bridge tells."""
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self._timeout)  # quiet while nothing changes
        headers = {"hue-application-key": self._key, "accept": "text/event-stream"}
        async with aiohttp.ClientSession(timeout=timeout) as session, \
                session.get(f"{self._base}{EVENT_STREAM}", headers=headers, ssl=False) as response:
            if response.status != HTTPStatus.OK:
                raise DriverError(f"{self.name}: the event stream answered HTTP {response.status}")
            up()
            self._lights.tell_all({light["id"]: light for light in await self.get(LIGHT)})
            async for data in server_sent_data(response.content.iter_any(), self.name):
                self._take(parse_report(data, self.name))

    def _take(self, events: Any) -> None:
        """Merge the lights' changes the bridge told into what it told before."""
        for event in events if isinstance(events, list) else ():
            for resource in event.get("data", ()) if isinstance(event, dict) else ():
                if not isinstance(resource, dict) or resource.get("type") != LIGHT:
                    continue
                light_id = str(resource.get("id"))
                known = self._lights.get(light_id)
                if event.get("type") == "delete":
                    self._lights.tell(light_id, None)
                elif known is not None or event.get("type") == "add":
                    self._lights.tell(light_id, _merged(known or {}, resource))

    def _lost(self, error: str) -> None:
        self._lights.forget()

    def _data(self, answer: Any) -> list[Resource]:
        if not isinstance(answer, dict) or not isinstance(answer.get("data"), list):
            raise DriverError(f"{self.name} answered with something that is not {V2_API}")
        if answer.get("errors"):
            raise DriverError(f"{self.name}: {answer['errors'][0].get('description', 'error')}")
        data: list[Resource] = answer["data"]
        return data


def _close_bridge(bridge: HueBridge) -> Awaitable[None]:
    return bridge.close()


BRIDGES: SharedHosts[tuple[str, int | None, str], HueBridge] = SharedHosts(_close_bridge)


def _merged(old: Resource, change: Resource) -> Resource:
    """`old` with `change` laid over it, nested objects merged key by key (an event says only what changed)."""
    merged = dict(old)
    for key, value in change.items():
        merged[key] = _merged(merged[key], value) if isinstance(value, dict) and isinstance(merged.get(key), dict) \
            else value
    return merged


class HueDriver(Driver):
    """A Hue light; `from_url` gives a HueGroupDriver for `/groups/ID`."""

    scheme = "hue"
    min_interval = 1 / LIGHT_REQUESTS_PER_SECOND
    effects = frozenset({Effect.SOLID, Effect.BLINK})
    pushes_state = True
    target_type: ClassVar[str] = LIGHT

    def __init__(self, url: LampUrl, ident: str, timeout: float) -> None:
        super().__init__(url)
        self._ident = ident
        self._timeout = timeout
        self._host = (url.host, url.port, url.user)
        self._held: HueBridge | None = None  # taken from BRIDGES on first use: a driver built to check holds none
        self._readings: Readings[dict[str, Body]] = Readings()  # light id -> its restoring PUT
        self._target: Resource | None = None
        self._signaling = False  # a blink we started may still run

    @property
    def _bridge(self) -> HueBridge:
        if self._held is None:
            self._held = BRIDGES.acquire(self._host, lambda: HueBridge(self.lamp_url, self._timeout))
        return self._held

    @property
    def _command_limit(self) -> RateLimit | None:
        return None

    @classmethod
    def from_url(cls, url: LampUrl) -> HueDriver:
        require(url, "the application key", url.user, EXAMPLE)
        require(url, "the bridge's address", url.host, EXAMPLE)
        check_options(url, {TIMEOUT})
        match = PATH.fullmatch(url.path)
        if match is None:
            raise LampUrlError(url.text(), f"path must be /lights/ID or /groups/ID, e.g. {EXAMPLE}")
        driver = HueGroupDriver if match[1] == "groups" else HueDriver
        return driver(url, match[2], timeout_option(url, DEFAULT_TIMEOUT))

    async def apply(self, state: LampState, showing: Signal | None = None) -> None:
        with answer_of(self.url(), V2_API):
            await self._apply(state)

    async def read_state(self) -> LampState:
        with answer_of(self.url(), V2_API):
            lights = await self._lights()
            if not lights:
                raise DriverError(f"{self.url()}: the group has no lights")
            shown = _lamp_state(next((light for light in lights if light["on"]["on"]), lights[0]))
            return self._readings.remember(shown, {light["id"]: _restorable(light) for light in lights})

    async def close(self) -> None:
        if self._held is not None:
            self._held = None
            await BRIDGES.release(self._host)

    async def _apply(self, state: LampState) -> None:
        target = await self._resolve()
        native = self._readings.native(state)
        if native is None:
            await self._command(target, _command(state, target, self._signaling))
        else:
            if self._signaling:
                await self._command(target, NO_SIGNAL)
            for light, body in native.items():
                await self._bridge.put(LIGHT, light, {**body, **INSTANT})
        self._signaling = state.on and state.effect is Effect.BLINK and _can_blink(target)

    async def _resolve(self) -> Resource:
        if self._target is None:
            self._target = await self._bridge.find(self.target_type, self._ident)
            self._watch(self._target)
        return self._target

    def _watch(self, light: Resource) -> None:
        """From now on, keep the light's state from the bridge's event stream."""
        self._bridge.watch(light["id"], self._pushed)

    def _pushed(self, light: Resource | None) -> None:
        if light is None:
            self.tell(None)
            return
        try:
            with answer_of(self.url(), V2_API):
                self.tell(self._readings.remember(_lamp_state(light), {light["id"]: _restorable(light)}))
        except DriverError:
            self.tell(None)  # not a light as we know them: read it before the next alert

    async def _command(self, target: Resource, body: Body) -> None:
        await self._bridge.put(self.target_type, target["id"], body, self._command_limit)

    async def _lights(self) -> list[Resource]:
        """The light resources this lamp is made of, as the bridge reports them now."""
        return await self._bridge.get(LIGHT, (await self._resolve())["id"])


class HueGroupDriver(HueDriver):
    """A Hue room, zone or all lights (`/groups/0`): one command a second to the group."""

    min_interval = 1 / GROUP_COMMANDS_PER_SECOND
    target_type = GROUP
    pushes_state = False  # its state is its lights': read before the first alert

    @property
    def _command_limit(self) -> RateLimit | None:
        return self._bridge.group_limit

    def _watch(self, light: Resource) -> None:
        """A group is read, not watched."""

    async def _lights(self) -> list[Resource]:
        members = set(await self._members(await self._resolve()))
        return [light for light in await self._bridge.get(LIGHT) if light["id"] in members]

    async def _members(self, group: Resource) -> list[str]:
        """The light ids of the room, zone or home that owns the grouped light."""
        owner = group["owner"]
        if owner["rtype"] == "bridge_home":
            return [light["id"] for light in await self._bridge.get(LIGHT)]
        area = (await self._bridge.get(owner["rtype"], owner["rid"]))[0]
        lights = [c["rid"] for c in area["children"] if c["rtype"] == LIGHT]
        devices = {c["rid"] for c in area["children"] if c["rtype"] == "device"}
        if devices:
            lights += [service["rid"] for device in await self._bridge.get("device") if device["id"] in devices
                       for service in device["services"] if service["rtype"] == LIGHT]
        return lights


def _command(state: LampState, target: Resource, signaling: bool) -> Body:
    """The PUT that makes a light or group show `state` at once."""
    body: Body = {"on": {"on": state.on}, **INSTANT}
    if state.on:
        x, y = to_xy(state.color)
        color = {"xy": {"x": x, "y": y}}
        if "dimming" in target:
            body["dimming"] = {"brightness": round(value_of(state.color) * state.brightness, 2)}
        if "color" in target:
            body["color"] = color
        if state.effect is Effect.BLINK and _can_blink(target):
            body["signaling"] = {"signal": BLINK_SIGNAL, "duration": SIGNAL_LONGEST_MS, "colors": [color]}
    if signaling and "signaling" not in body:
        body.update(NO_SIGNAL)
    return body


def _can_blink(target: Resource) -> bool:
    return BLINK_SIGNAL in target.get("signaling", {}).get("signal_values", [])


def _lamp_state(light: Resource) -> LampState:
    xy = light.get("color", {}).get("xy")
    return LampState(on=bool(light["on"]["on"]), color=from_xy(xy["x"], xy["y"]) if xy else "#ffffff",
                     brightness=round(light.get("dimming", {}).get("brightness", 100.0)),
                     effect=Effect.BLINK if light.get("signaling", {}).get("status") else Effect.SOLID)


def _restorable(light: Resource) -> Body:
    """The PUT that brings the light back to exactly what it shows now."""
    body: Body = {"on": {"on": light["on"]["on"]}}
    if "dimming" in light:
        body["dimming"] = {"brightness": light["dimming"]["brightness"]}
    temperature = light.get("color_temperature") or {}
    if temperature.get("mirek_valid") and temperature.get("mirek") is not None:
        body["color_temperature"] = {"mirek": temperature["mirek"]}
    elif "color" in light:
        body["color"] = {"xy": light["color"]["xy"]}
    return body
