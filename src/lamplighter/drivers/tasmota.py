"""`tasmota://[USER:PASSWORD@]BROKER[:PORT]/TOPIC` and `tasmota+http://[admin:PASSWORD@]HOST[:PORT]`: Tasmota devices.

A Tasmota light (bulb, LED strip controller) or a relay (a plug driving a lamp or a
siren), reached through its MQTT broker or its own web server.

    tasmota://192.168.1.5/desk_bulb          tasmota://USER:PASSWORD@broker.local/plug_4?relay=2
    tasmota://192.168.1.5/strip?fulltopic=tasmota/%25topic%25/%25prefix%25/&tls=true
    tasmota+http://192.168.1.60              tasmota+http://admin:WEBPASSWORD@192.168.1.60?relay=1

MQTT: TOPIC is the device's `Topic`. Commands go to `cmnd/TOPIC/Backlog0`, answers come
on `stat/TOPIC/RESULT`, and the broker keeps `tele/TOPIC/LWT` (`Online`/`Offline`). If
the device's `FullTopic` is not the default `%prefix%/%topic%/`, give it as `fulltopic`
(URL-encoded: `%` is `%25`). `USER:PASSWORD@` is the broker login; `tls=true` speaks TLS
(port 8883 unless given). HTTP: `GET /cm?cmnd=...` on the device; the web password (user
`admin`) goes in the `user` and `password` parameters of that request, as Tasmota wants.
Either way `timeout` (seconds, default 3) bounds the wait for an answer, and a password
is never printed.

A light gets one `Backlog0` (the commands run at once, without Backlog's 200 ms pauses):
`Speed2 0` (no fade for the next change only: the user's own `Fade` and `Speed` settings
are never touched), `Color1 #RRGGBB` with the brightness folded into the colour (`#800000`
is red at half brightness; Tasmota derives its `Dimmer` from it) and `Power1 ON` or
`OFF` (the light is the device's first output, as on a bulb or a strip controller).
Setting the colour before switching off keeps it for the next switch-on (a light that is
already off shows that colour for a moment: Tasmota switches a light on for a colour). With
`relay=N` the lamp is relay N and gets only `PowerN ON`/`OFF`.

Over MQTT the device tells its state by itself: every command's answer on
`stat/TOPIC/RESULT` (ours, Home Assistant's, the web console's, a button press) and its
periodic `tele/TOPIC/STATE`; the driver merges them (a power-only RESULT changes the power
of the last whole report), so the first alert needs no `State` in front of it. Over HTTP
nothing is pushed: the device is read just before the first alert.

Over MQTT the answer to the last command of a Backlog0 (the power) on `stat/TOPIC/RESULT`
is its acknowledgement; none within `timeout` is DeviceOffline, and so is an `Offline`
LWT, at once. Over HTTP the answer to the request is (the firmware runs the Backlog0
right after answering). `{"Command": "Unknown"}` or a web password warning is a DriverError.

Restore is exact: `State` reports the power, `Color` (every channel, white ones included,
so a colour-temperature white comes back as it was) and the driver sends exactly those
back. Effects: Tasmota's light schemes cycle colours, and `Power BLINK` toggles an output
only `BlinkCount` times (32,000 at most, with `BlinkCount 0`) at the pace of `BlinkTime`,
two persistent settings the driver would have to change and put back; so it declares no
native effects, and the lamp controller draws blink and pulse as solid frames.
An ESP8266 answers a command in tens of milliseconds but drops its broker connection
when flooded: at most five commands a second go to one device.
"""

from __future__ import annotations

import json
from abc import abstractmethod
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote, urlencode

from lamplighter.drivers.base import Driver, LampUrl
from lamplighter.drivers.color import from_hsv, to_hex, to_hsv, to_rgb, value_of
from lamplighter.drivers.http import HttpDevice, answer_of
from lamplighter.drivers.mqtt import TLS, Inbox, MqttDevice, broker_address, topic_name
from lamplighter.drivers.native import Readings
from lamplighter.drivers.options import TIMEOUT, check_options, require, timeout_option
from lamplighter.drivers.pacing import RateLimit
from lamplighter.errors import DeviceOffline, DriverError, LampUrlError
from lamplighter.model import LampState, Signal

DEFAULT_TIMEOUT = 3.0
COMMANDS_PER_SECOND = 5
RELAY = "relay"
FULLTOPIC = "fulltopic"
DEFAULT_FULLTOPIC = "%prefix%/%topic%/"
MOST_RELAYS = 32
WEB_USER = "admin"  # Tasmota's web interface has this one user
STATE_WORDS = "Tasmota's state"
LIGHT_KEYS = frozenset({"Dimmer", "Color", "HSBColor"})  # with the power: all a light's state and restore need

Body = dict[str, Any]


@dataclass(frozen=True)
class Output:
    """What the lamp is on the device: its light, or relay `relay`. Builds commands and reads answers."""

    relay: int | None = None

    @property
    def power(self) -> str:
        return f"Power{self.relay or 1}"

    def commands(self, state: LampState) -> str:
        """The Backlog0 line that makes the output show `state` at once."""
        switch = f"{self.power} {'ON' if state.on else 'OFF'}"
        if self.relay is not None:
            return switch
        hue, saturation, _ = to_hsv(state.color)
        level = value_of(state.color) * state.brightness / 100
        red, green, blue = (round(c * level) for c in to_rgb(from_hsv(hue, saturation)))
        return f"Speed2 0;Color1 {to_hex((red, green, blue))};{switch}"

    def reports_state(self, payload: bytes) -> bool:
        """Whether a RESULT is the device's state (the answer to `State`)."""
        data = _json_object(payload)
        if data is None or self._power_of(data) is None:
            return False
        return self.relay is not None or "Dimmer" in data

    def acknowledges(self, payload: bytes) -> bool:
        """Whether a RESULT ends a Backlog0 of ours: the answer to its last command (the power),
        or a refusal. Earlier answers (`Speed2`, `Color1`) are passed over, so none is left to be
        mistaken for the answer to the next command."""
        data = _json_object(payload)
        if data is None:
            return False
        return "Command" in data or "WARNING" in data or (self._power_of(data) is not None and len(data) == 1)

    def shown(self, data: Body) -> LampState:
        on = self._power_of(data) == "ON"
        if self.relay is not None:
            return LampState(on=on)
        hue, saturation, _ = (int(part) for part in str(data.get("HSBColor", "0,0,100")).split(","))
        return LampState(on=on, color=from_hsv(hue, saturation / 100), brightness=int(data["Dimmer"]))

    def restoring(self, data: Body) -> str:
        """The Backlog0 line that brings the output back to exactly what `data` reports."""
        switch = f"{self.power} {self._power_of(data)}"
        if self.relay is not None:
            return switch
        color = str(data["Color"])
        return f"Speed2 0;Color1 {color if ',' in color else '#' + color};{switch}"

    def told(self, before: Body, data: Body) -> Body:
        """What the device has told of this output so far, with `data` (a RESULT, or the periodic
        `tele/.../STATE`) taken in: a power-only RESULT changes the power of the last full report."""
        number = self.relay or 1
        keys = {f"POWER{number}", *(("POWER",) if number == 1 else ()), *(() if self.relay else LIGHT_KEYS)}
        return {**before, **{key: value for key, value in data.items() if key in keys}}

    def complete(self, told: Body) -> bool:
        """Whether `told` is the output's whole state (a light's colour and dimmer as well as its power)."""
        return self._power_of(told) is not None and (self.relay is not None or told.keys() >= LIGHT_KEYS)

    def _power_of(self, data: Body) -> str | None:
        """The output's power in a state report: POWERn, or POWER on a device with one output."""
        number = self.relay or 1
        found = data.get(f"POWER{number}", data.get("POWER") if number == 1 else None)
        return None if found is None else str(found)


class TasmotaBase(Driver):
    """What the MQTT and HTTP faces share: the commands, the state report, exact restore."""

    min_interval = 1 / COMMANDS_PER_SECOND

    def __init__(self, url: LampUrl, output: Output) -> None:
        super().__init__(url)
        self._output = output
        self._readings: Readings[str] = Readings()

    async def apply(self, state: LampState, showing: Signal | None = None) -> None:
        _check_answer(self.url(), await self.command(self._readings.native(state) or self._output.commands(state)))

    async def read_state(self) -> LampState:
        data = _check_answer(self.url(), await self.state_report())
        with answer_of(self.url(), STATE_WORDS):
            shown = self._output.shown(data)
            return self._readings.remember(shown, self._output.restoring(data))

    @abstractmethod
    async def command(self, backlog: str) -> Any:
        """Run `Backlog0 backlog` on the device; its answer (JSON)."""

    @abstractmethod
    async def state_report(self) -> Any:
        """The device's answer to `State` (JSON)."""


class TasmotaDriver(TasmotaBase):
    """A Tasmota device through its MQTT broker; it tells its state by itself (every RESULT, and `tele/.../STATE`)."""

    scheme = "tasmota"
    pushes_state = True

    def __init__(self, url: LampUrl, output: Output, fulltopic: str, timeout: float) -> None:
        super().__init__(url, output)
        self._device = MqttDevice(broker_address(url), self.url(), timeout, RateLimit(COMMANDS_PER_SECOND))
        self._cmnd, self._stat, self._tele = (fulltopic.replace("%prefix%", p) for p in ("cmnd", "stat", "tele"))
        self._told: Body = {}

    @classmethod
    def from_url(cls, url: LampUrl) -> TasmotaDriver:
        example = "tasmota://192.168.1.5/desk_bulb"
        require(url, "the MQTT broker's address", url.host, example)
        check_options(url, {RELAY, FULLTOPIC, TIMEOUT, TLS})
        topic = topic_name(url, "the topic", unquote(url.path.removeprefix("/")))
        require(url, "the device's Topic as the path", topic, example)
        broker_address(url)  # checks the tls option now, not at the first alert
        return cls(url, _output(url), _fulltopic(url, topic), timeout_option(url, DEFAULT_TIMEOUT))

    async def command(self, backlog: str) -> Any:
        results = await self._results()
        return json.loads(await self._device.request(f"{self._cmnd}Backlog0", backlog, results,
                                                     self._output.acknowledges))

    async def state_report(self) -> Any:
        results = await self._results()
        return json.loads(await self._device.request(f"{self._cmnd}State", "", results, self._output.reports_state))

    async def start(self) -> None:
        for topic in (f"{self._stat}RESULT", f"{self._tele}STATE"):
            (await self._device.inbox(topic)).listen(self._pushed)
        (await self._device.inbox(f"{self._tele}LWT")).listen(self._last_will)

    async def close(self) -> None:
        await self._device.close()

    def _pushed(self, payload: bytes | None) -> None:
        """The device told something: an answer to anyone's command, a button press, its periodic state
        (None: the broker connection broke, and what it told before may be stale)."""
        if payload is None:
            self._told = {}
            self.tell(None)
            return
        data = _json_object(payload)
        if data is None:
            return
        self._told = self._output.told(self._told, data)
        if not self._output.complete(self._told):
            return  # a power-only RESULT before any whole report: a read will tell the rest
        try:
            with answer_of(self.url(), STATE_WORDS):
                self.tell(self._readings.remember(self._output.shown(self._told), self._output.restoring(self._told)))
        except DriverError:
            self._told = {}
            self.tell(None)  # not a state after all: read the device before the next alert

    def _last_will(self, payload: bytes | None) -> None:
        if payload is None or payload == b"Offline":
            self.tell(None)

    async def _results(self) -> Inbox:
        """The device's RESULT messages, once its last will does not say it is offline."""
        results = await self._device.inbox(f"{self._stat}RESULT")
        if (await self._device.inbox(f"{self._tele}LWT")).latest == b"Offline":
            raise DeviceOffline(f"{self.url()}: its last will says Offline")
        return results


class TasmotaHttpDriver(TasmotaBase):
    """A Tasmota device through its web server's `/cm` command endpoint."""

    scheme = "tasmota+http"

    def __init__(self, url: LampUrl, output: Output, timeout: float) -> None:
        super().__init__(url, output)
        port = f":{url.port}" if url.port else ""
        self._endpoint = f"http://{url.host}{port}/cm"
        self._login = {"user": unquote(url.user) or WEB_USER, "password": unquote(url.password)} if url.password else {}
        self._device = HttpDevice(self.url(), RateLimit(COMMANDS_PER_SECOND), timeout)

    @classmethod
    def from_url(cls, url: LampUrl) -> TasmotaHttpDriver:
        require(url, "the device's address", url.host, "tasmota+http://192.168.1.60")
        if url.path not in ("", "/"):
            raise LampUrlError(url.text(), "takes only an address: tasmota+http://[admin:PASSWORD@]HOST[:PORT]")
        check_options(url, {RELAY, TIMEOUT})
        return cls(url, _output(url), timeout_option(url, DEFAULT_TIMEOUT))

    async def command(self, backlog: str) -> Any:
        return await self._get(f"Backlog0 {backlog}")

    async def state_report(self) -> Any:
        return await self._get("State")

    async def close(self) -> None:
        await self._device.close()

    async def _get(self, command: str) -> Any:
        query = urlencode({**self._login, "cmnd": command}, quote_via=quote)
        return await self._device.request("GET", f"{self._endpoint}?{query}")


def _json_object(payload: bytes) -> Body | None:
    try:
        data = json.loads(payload)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _check_answer(name: str, data: Any) -> Body:
    """The answer, if it says the command was taken; else a DriverError saying why not."""
    if not isinstance(data, dict):
        raise DriverError(f"{name} answered with something that is not Tasmota's JSON")
    warning = str(data.get("WARNING", ""))
    if "password" in warning.lower():
        raise DriverError(f"{name} refused our web password")
    if warning:
        raise DriverError(f"{name} refused the command: {warning}")
    if data.get("Command") == "Unknown":
        raise DriverError(f"{name} does not know a command we sent (Backlog0 and Speed2 need a recent Tasmota)")
    return data


def _output(url: LampUrl) -> Output:
    text = url.param(RELAY)
    if not text:
        return Output()
    if not text.isdigit() or not 0 < int(text) <= MOST_RELAYS:
        raise LampUrlError(url.text(), f"relay must be a relay number from 1 to {MOST_RELAYS}, not {text!r}")
    return Output(int(text))


def _fulltopic(url: LampUrl, topic: str) -> str:
    """The device's FullTopic with %topic% filled in (still holding %prefix%), ending in `/`."""
    pattern = url.param(FULLTOPIC, DEFAULT_FULLTOPIC)
    if "%prefix%" not in pattern or "%topic%" not in pattern:
        raise LampUrlError(url.text(), f"fulltopic must contain %prefix% and %topic%, like {DEFAULT_FULLTOPIC}")
    filled = topic_name(url, FULLTOPIC, pattern.replace("%topic%", topic))
    return filled if filled.endswith("/") else f"{filled}/"
