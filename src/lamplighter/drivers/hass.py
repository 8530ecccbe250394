"""`hass://TOKEN@HOST[:PORT]/light.ENTITY` or `/siren.ENTITY`: a Home Assistant light or siren through HA's REST API.

Any light or siren Home Assistant drives, whatever its brand, becomes a lamp or a siren here.
TOKEN is an access token for HA's REST API: a long-lived one from the user's profile page,
usually written as `${HASS_TOKEN}` so that it comes from the environment. It travels in the
`Authorization` header, never in a URL, and is printed as `****`. `hass+https://` talks TLS.
Without a port, `hass://` uses HA's own 8123 and `hass+https://` 443 (a reverse proxy).

Lights: one service call per change, `light.turn_on` with `rgb_color` at full value, the
colour's own value folded into `brightness` (0-255), and `transition: 0`, or `light.turn_off`
with `transition: 0`. A light with an effect list is also given its "no effect" entry
(HA's `off`, or `none`/`None`/`Solid` as integrations spell it), so a running effect does not
hide the alert colour. HA's `flash` is one short or long flash, not a steady blink, so no
effect is native: the lamp controller emulates blink and pulse with solid states.

Restore is exact: the light's colour mode and its own values (`color_temp_kelvin`,
`hs_color`, `xy_color`, `rgb(w)(w)_color` or `white`), brightness and effect, read from
`/api/states/ENTITY`, are what is sent back, so a light at 2700 K comes back at 2700 K. HA
does not report the colour of a light that is off, so "was off" is restored as off.

Sirens: `siren.turn_on` with the `tone`, `duration` (whole seconds) and `volume` (0 to 1,
HA's `volume_level`) options, and `siren.turn_off`. HA drops the ones a siren does not
support; a tone the siren does not list is left out with a warning, so the siren still
sounds. The alert's colour means nothing to a siren: only on and off matter. A siren that
stopped by itself (its duration ran out) while its signal is still active sounds again at
the lamp controller's next look.

Every entity on one Home Assistant (same address, token and transport) shares one HTTP
connection and one pacing: at most 10 requests a second go to HA, one at a time. An
entity HA does not know is a DriverError (HTTP 404, the URL names the entity); one HA
reports `unavailable`, and HA itself not answering, are DeviceOffline.

A light keeps its state from HA's websocket API (`/api/websocket`, one per HA, its
`subscribe_entities` for exactly the entities that are lamps here), which tells every
change whoever made it, so the first alert is sent without a read in front of it. While
the websocket is down the light is read first instead. A siren is always read.

    hass://TOKEN@homeassistant.local:8123/light.office
    hass+https://TOKEN@ha.example.org/siren.hall?tone=alarm&duration=30&volume=0.8&timeout=5
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import unquote

import aiohttp

from lamplighter.drivers.base import Driver, LampUrl
from lamplighter.drivers.color import percent, scale, to_hex, to_rgb, value_of
from lamplighter.drivers.http import HttpDevice, answer_of
from lamplighter.drivers.native import Readings
from lamplighter.drivers.options import TIMEOUT, check_options, require, timeout_option
from lamplighter.drivers.pacing import RateLimit
from lamplighter.drivers.push import MAX_PUSH_BYTES, PushStream, Told, parse_report
from lamplighter.drivers.shared import SharedHosts
from lamplighter.errors import DeviceOffline, DriverError, LampUrlError
from lamplighter.model import LAMP_OFF, LampState, Signal

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 10.0  # HA answers a service call when the integration is done with the device
REQUESTS_PER_SECOND = 10
HA_PORT, TLS_PORT = 8123, 443
TLS_SUFFIX = "+https"
EXAMPLE = "hass://TOKEN@homeassistant.local:8123/light.office"
ENTITY = re.compile(r"/((light|siren)\.[a-z0-9_]+)")
ON, UNAVAILABLE = "on", "unavailable"
HEARTBEAT = 10.0  # seconds between websocket pings: an HA that went away is noticed within two
FULL = 255
INSTANT = {"transition": 0}
NO_EFFECT = ("off", "none", "None", "Solid")  # HA's EFFECT_OFF, then what integrations call it
NATIVE_COLORS = {"color_temp": "color_temp_kelvin", "hs": "hs_color", "xy": "xy_color", "rgb": "rgb_color",
                 "rgbw": "rgbw_color", "rgbww": "rgbww_color"}  # color_mode -> the attribute that says it
WHITE = "white"  # a colour mode whose value is a brightness, and the turn_on field for it
TONE, DURATION, VOLUME = "tone", "duration", "volume"
LONGEST_SIREN = 86_400  # seconds

Attributes = dict[str, Any]
ServiceData = dict[str, Any]


class HassInstance:
    """One Home Assistant: its REST API (one client, one pacing) and its websocket, shared by its entities."""

    def __init__(self, url: LampUrl, timeout: float) -> None:
        secure = url.scheme.endswith(TLS_SUFFIX)
        address = f"{url.host}:{url.port or (TLS_PORT if secure else HA_PORT)}"
        self.api = f"{'https' if secure else 'http'}://{address}/api"
        self.name = url.text()
        self._socket_url = f"{'wss' if secure else 'ws'}://{address}/api/websocket"
        self._token = unquote(url.user)
        self._timeout = timeout
        self.device = HttpDevice(self.name, RateLimit(REQUESTS_PER_SECOND), timeout,
                                 headers={"Authorization": f"Bearer {self._token}"})
        self._entities: Told[Entity] = Told()  # entity id -> what the websocket last told of it
        self._socket: aiohttp.ClientWebSocketResponse | None = None
        self._next_id = 1
        self._stream = PushStream(self.name, self._listen, self._lost)

    def watch(self, entity_id: str, watcher: EntityWatcher) -> None:
        """Call `watcher` with the entity's state and attributes on every change, None while HA cannot tell."""
        first = self._entities.watch(entity_id, watcher)
        self._stream.start()
        if first and self._socket is not None:
            task = asyncio.create_task(self._subscribe([entity_id]))
            task.add_done_callback(lambda done: done.cancelled() or done.exception())  # a lost socket reconnects

    async def close(self) -> None:
        await self._stream.stop()
        await self.device.close()

    async def _listen(self, up: Callable[[], None]) -> None:
        """One websocket session: log in, subscribe to the lamps' entities, take every change."""
        timeout = aiohttp.ClientTimeout(sock_connect=self._timeout)
        async with aiohttp.ClientSession(timeout=timeout) as session, session.ws_connect(
                self._socket_url, heartbeat=HEARTBEAT, max_msg_size=MAX_PUSH_BYTES) as socket:
            await self._log_in(socket)
            self._socket = socket
            try:
                up()
                await self._subscribe(self._entities.watched)
                async for message in socket:
                    if message.type is aiohttp.WSMsgType.TEXT:
                        self._take(parse_report(message.data, self.name))
            finally:
                self._socket = None

    async def _log_in(self, socket: aiohttp.ClientWebSocketResponse) -> None:
        async with asyncio.timeout(self._timeout):
            await socket.receive()  # auth_required
            await socket.send_json({"type": "auth", "access_token": self._token})
            answer = parse_report((await socket.receive()).data, self.name)
        if not isinstance(answer, dict) or answer.get("type") != "auth_ok":
            raise DriverError(f"{self.name}: Home Assistant refused the token on its websocket")

    async def _subscribe(self, entity_ids: list[str]) -> None:
        if self._socket is None or not entity_ids:
            return
        self._next_id += 1
        await self._socket.send_json({"id": self._next_id, "type": "subscribe_entities", "entity_ids": entity_ids})

    def _take(self, message: Any) -> None:
        """An entities event: `a` the whole state of entities, `c` what changed (`+` set, `-` removed)."""
        event = message.get("event") if isinstance(message, dict) and message.get("type") == "event" else None
        if not isinstance(event, dict) or not all(isinstance(event.get(k) or {}, dict) for k in "ac"):
            return
        for entity_id, whole in (event.get("a") or {}).items():
            if isinstance(whole, dict):
                self._entities.tell(entity_id, Entity(str(whole.get("s")), dict(whole.get("a") or {})))
        for entity_id, change in (event.get("c") or {}).items():
            known = self._entities.get(entity_id)
            if known is not None and isinstance(change, dict):
                self._entities.tell(entity_id, known.changed(change))
        for entity_id in event.get("r") or ():
            self._entities.tell(entity_id, None)

    def _lost(self, error: str) -> None:
        self._entities.forget()


@dataclass(frozen=True)
class Entity:
    """An entity as HA's websocket told it: its state word and its attributes."""

    state: str
    attributes: Attributes

    def changed(self, change: dict[str, Any]) -> Entity:
        added, removed = change.get("+") or {}, change.get("-") or {}
        attributes = {**self.attributes, **(added.get("a") or {})}
        for name in removed.get("a") or ():
            attributes.pop(name, None)
        return Entity(str(added.get("s", self.state)), attributes)


EntityWatcher = Callable[[Entity | None], None]


def _close_instance(instance: HassInstance) -> Awaitable[None]:
    return instance.close()


HostKey = tuple[str, str, int, str]
INSTANCES: SharedHosts[HostKey, HassInstance] = SharedHosts(_close_instance)


def instance_key(url: LampUrl) -> HostKey:
    """The Home Assistant a URL names (transport, address, token): every user of one key shares one HassInstance,
    hass:// lamps and the hub's presence alike (`INSTANCES.acquire(instance_key(url), ...)`)."""
    secure = url.scheme.endswith(TLS_SUFFIX)
    return url.scheme, url.host, url.port or (TLS_PORT if secure else HA_PORT), url.user


class HassDriver(Driver):
    """One Home Assistant entity; `from_url` gives a HassLightDriver or a HassSirenDriver."""

    scheme = "hass"
    min_interval = 1 / REQUESTS_PER_SECOND
    options: ClassVar[frozenset[str]] = frozenset({TIMEOUT})

    def __init__(self, url: LampUrl, entity_id: str, timeout: float) -> None:
        super().__init__(url)
        self.entity_id = entity_id
        self._domain = entity_id.partition(".")[0]
        self._timeout = timeout
        self._host = instance_key(url)
        self._held: HassInstance | None = None  # taken from INSTANCES on first use
        self._attributes: Attributes | None = None

    @property
    def _ha(self) -> HassInstance:
        if self._held is None:
            self._held = INSTANCES.acquire(self._host, lambda: HassInstance(self.lamp_url, self._timeout))
        return self._held

    @classmethod
    def from_url(cls, url: LampUrl) -> HassDriver:
        require(url, "an access token", url.user, EXAMPLE)
        require(url, "Home Assistant's address", url.host, EXAMPLE)
        if url.password:
            raise LampUrlError(url.text(), f"the token goes alone before the @: {EXAMPLE}")
        match = ENTITY.fullmatch(url.path)
        if match is None:
            raise LampUrlError(url.text(), f"path must be a light or siren entity id (/light.NAME, /siren.NAME), "
                                           f"e.g. {EXAMPLE}")
        driver = HassSirenDriver if match[2] == "siren" else HassLightDriver
        check_options(url, driver.options)
        return driver(url, match[1], timeout_option(url, DEFAULT_TIMEOUT))

    async def close(self) -> None:
        if self._held is not None:
            self._held = None
            await INSTANCES.release(self._host)

    async def _read(self) -> tuple[bool, Attributes]:
        """Whether the entity is on, and its attributes, as HA reports them now."""
        answer = await self._ha.device.request("GET", f"{self._ha.api}/states/{self.entity_id}")
        with answer_of(self.url(), "a Home Assistant entity state"):
            state, attributes = str(answer["state"]), dict(answer["attributes"])
        if state == UNAVAILABLE:
            raise DeviceOffline(f"{self.url()}: Home Assistant reports {self.entity_id} unavailable")
        self._attributes = attributes
        return state == ON, attributes

    async def _known_attributes(self) -> Attributes:
        """The entity's attributes as last read (read now if never): what it supports."""
        return self._attributes if self._attributes is not None else (await self._read())[1]

    async def _call(self, service: str, data: ServiceData) -> None:
        body = {"entity_id": self.entity_id, **data}
        await self._ha.device.request("POST", f"{self._ha.api}/services/{self._domain}/{service}", body)


class HassLightDriver(HassDriver):
    """A `light.*` entity."""

    pushes_state = True

    def __init__(self, url: LampUrl, entity_id: str, timeout: float) -> None:
        super().__init__(url, entity_id, timeout)
        self._readings: Readings[ServiceData] = Readings()  # LampState read -> the turn_on that restores it

    async def start(self) -> None:
        self._ha.watch(self.entity_id, self._pushed)

    def _pushed(self, entity: Entity | None) -> None:
        """HA told the light's state (None: its websocket is down, or it forgot the entity)."""
        if entity is None or entity.state == UNAVAILABLE:
            self.tell(None)
            return
        self._attributes = entity.attributes
        if entity.state != ON:
            self.tell(LAMP_OFF)
            return
        try:
            with answer_of(self.url(), "a Home Assistant light's state"):
                self.tell(self._readings.remember(_lamp_state(entity.attributes), _restorable(entity.attributes)))
        except DriverError:
            self.tell(None)

    async def apply(self, state: LampState, showing: Signal | None = None) -> None:
        if not state.on:
            await self._call("turn_off", INSTANT)
            return
        native = self._readings.native(state)
        data = native if native is not None else _turn_on(state, await self._known_attributes())
        await self._call("turn_on", {**data, **INSTANT})

    async def read_state(self) -> LampState:
        on, attributes = await self._read()
        if not on:
            return LAMP_OFF
        with answer_of(self.url(), "a Home Assistant light's state"):
            return self._readings.remember(_lamp_state(attributes), _restorable(attributes))


class HassSirenDriver(HassDriver):
    """A `siren.*` entity: on or off, with the URL's tone, duration and volume."""

    options = frozenset({TIMEOUT, TONE, DURATION, VOLUME})

    def __init__(self, url: LampUrl, entity_id: str, timeout: float) -> None:
        super().__init__(url, entity_id, timeout)
        self._turn_on = _siren_options(url)
        self._sent = LAMP_OFF

    async def apply(self, state: LampState, showing: Signal | None = None) -> None:
        if state.on:
            await self._call("turn_on", self._playable(await self._known_attributes()))
        else:
            await self._call("turn_off", {})
        self._sent = state

    async def read_state(self) -> LampState:
        """On or off; while it is as we last set it, what we set (the colour means nothing to a siren)."""
        on, _ = await self._read()
        return self._sent if self._sent.on == on else LampState(on=on)

    def _playable(self, attributes: Attributes) -> ServiceData:
        """The turn_on options, without a tone the siren does not list (HA would refuse the call)."""
        tone = self._turn_on.get(TONE)
        tones = attributes.get("available_tones")
        if tone is None or not tones or tone in _tone_names(tones):
            return self._turn_on
        log.warning("siren %s has no tone %r (it has %s): sounding its default tone", self.url(), tone,
                    ", ".join(sorted(_tone_names(tones))))
        return {k: v for k, v in self._turn_on.items() if k != TONE}


def _turn_on(state: LampState, attributes: Attributes) -> ServiceData:
    """The light.turn_on fields that show `state`: the colour at full value, its value in the brightness."""
    rgb = to_rgb(state.color)
    top = max(rgb) or FULL
    data: ServiceData = {"rgb_color": [round(c * FULL / top) for c in rgb],
                         "brightness": round(value_of(state.color) * scale(state.brightness, FULL))}
    no_effect = next((name for name in NO_EFFECT if name in (attributes.get("effect_list") or ())), None)
    if no_effect is not None:
        data["effect"] = no_effect
    return data


def _lamp_state(attributes: Attributes) -> LampState:
    """A light that is on, as a LampState (HA gives every colour mode's colour as rgb_color too)."""
    rgb = attributes.get("rgb_color")
    brightness = attributes.get("brightness")
    return LampState(on=True, color=to_hex((rgb[0], rgb[1], rgb[2])) if rgb else "#ffffff",
                     brightness=100 if brightness is None else percent(brightness, FULL))


def _restorable(attributes: Attributes) -> ServiceData:
    """The light.turn_on fields that bring a light that is on back to exactly what it shows now."""
    mode = attributes.get("color_mode")
    data: ServiceData = {}
    if mode == WHITE:
        data[WHITE] = attributes["brightness"]
    elif attributes.get("brightness") is not None:
        data["brightness"] = attributes["brightness"]
    color = NATIVE_COLORS.get(str(mode))
    if color is not None and attributes.get(color) is not None:
        data[color] = attributes[color]
    if attributes.get("effect"):
        data["effect"] = attributes["effect"]
    return data


def _siren_options(url: LampUrl) -> ServiceData:
    """siren.turn_on's fields from the URL's `tone`, `duration` and `volume`."""
    data: ServiceData = {}
    if url.param(TONE):
        data[TONE] = url.param(TONE)
    if url.param(DURATION):
        wanted = f"a whole number of seconds from 1 to {LONGEST_SIREN}"
        data[DURATION] = round(_number(url, DURATION, wanted, 1, LONGEST_SIREN, whole=True))
    if url.param(VOLUME):
        data["volume_level"] = _number(url, VOLUME, "a number from 0 to 1", 0.0, 1.0)
    return data


def _number(url: LampUrl, name: str, wanted: str, low: float, high: float, whole: bool = False) -> float:
    text = url.param(name)
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not low <= value <= high or (whole and not value.is_integer()):
        raise LampUrlError(url.text(), f"{name} must be {wanted}, not {text!r}")
    return value


def _tone_names(tones: list[Any] | dict[Any, Any]) -> set[str]:
    """The tones a siren takes: its list, or the keys and names of its {id: name} map."""
    names = {str(tone) for tone in tones}
    return names | {str(name) for name in tones.values()} if isinstance(tones, dict) else names
