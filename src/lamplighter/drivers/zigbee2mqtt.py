"""`z2m://[USER:PASSWORD@]BROKER[:PORT]/FRIENDLY_NAME`: a Zigbee light or siren through Zigbee2MQTT.

FRIENDLY_NAME is the device's name in Zigbee2MQTT, URL-encoded (`Living%20room/ceiling`
for "Living room/ceiling"; a `/` may stay as it is). Options: `base_topic` (Zigbee2MQTT's
`mqtt.base_topic`, default `zigbee2mqtt`), `timeout` (seconds, default 5), `tls=true`
(MQTT over TLS, port 8883 unless given), and for a siren `warning=MODE` (below).

    z2m://192.168.1.5/desk_lamp                    z2m://USER:PASSWORD@broker.local:1884/Living%20room/ceiling
    z2m://192.168.1.5/hall_siren?warning=emergency&duration=600

Zigbee2MQTT's own API, as it behaves: a command is a JSON object published to
`zigbee2mqtt/NAME/set` (`{"state": "ON", "brightness": 254, "color": {"hex": "#ff0000"},
"transition": 0}`); after the device took it, Zigbee2MQTT publishes the device's whole
state on `zigbee2mqtt/NAME` (the driver waits for that publish as the acknowledgement:
none within `timeout` is DeviceOffline; a device set to `optimistic: false` in
Zigbee2MQTT publishes only what it reports by itself, so leave that option on).
`zigbee2mqtt/NAME/get` with `{"state": ""}` makes it read the device and publish the
state again, which is how the state is read for the restore snapshot. A device reported
offline on `zigbee2mqtt/NAME/availability`, or Zigbee2MQTT itself on
`zigbee2mqtt/bridge/state`, is DeviceOffline at once. One to two seconds from message to
light are normal on a real Zigbee network.

Every change is sent with `transition: 0`. A colour's own value is folded into the
brightness (`#800000` is red at half brightness). Turning off names the colour too, so
the lamp keeps it for the next time someone switches it on (Zigbee2MQTT sends the colour
before the off; a lamp that was on shows it for a moment).

Zigbee2MQTT publishes the device's whole state on `zigbee2mqtt/NAME` after every change,
whoever made it (the app, a remote, us), so the driver keeps the state from those
publishes and the first alert is sent without a `/get` in front of it; while the broker
connection is down, or Zigbee2MQTT or the device is offline, it reads first instead.

Restore is exact in Zigbee2MQTT's own terms: power, brightness and the colour in the
mode the lamp was in (`color_temp` mireds, `xy` or `hs`) are sent back as read. A lamp
that was off gets its colour back, but its next switch-on has the alert's brightness:
Zigbee2MQTT takes no brightness with an off.

Effects: Zigbee2MQTT's `effect: blink` is one blink and `breathe` one cycle, so nothing
here blinks until told to stop: the driver declares no native effects and the lamp
controller draws blink and pulse as solid frames.

Pacing: Zigbee networks dislike floods. A `/set` turns into up to three Zigbee commands
(on/off with level, colour), which the coordinator sends one after another to a mesh of
small routers, and a real lamp takes one to two seconds to answer; so a lamp gets at most
one change a second (`min_interval`), and the driver never sends more than two messages
(a read and a change) in any second.

Sirens (warning devices such as Heiman's): with `warning=MODE` (burglar, fire,
emergency, police_panic, fire_panic, emergency_panic) the lamp is a siren. On, it sends
`{"warning": {"mode": MODE, "level": "very_high", "strobe": true, "duration": SECONDS}}`
(`duration` option, default 1800: the siren stops by itself after half an hour even if
nobody acknowledges); off, `{"warning": {"mode": "stop"}}`. Zigbee2MQTT publishes no
state for a warning, so a siren is acknowledged by the broker only, reads back as what it
was last told (silent at first), and counts as offline only when Zigbee2MQTT says so.
Configure it under `sirens:`, where the controller never draws blink frames on it.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote

from lamplighter.drivers.base import Driver, LampUrl
from lamplighter.drivers.color import from_hsv, from_xy, to_hsv, value_of
from lamplighter.drivers.http import answer_of
from lamplighter.drivers.mqtt import TLS, Inbox, MqttDevice, broker_address, topic_name
from lamplighter.drivers.native import Readings
from lamplighter.drivers.options import TIMEOUT, check_options, require, timeout_option
from lamplighter.drivers.pacing import RateLimit
from lamplighter.drivers.push import parse_report
from lamplighter.errors import DeviceOffline, DriverError, LampUrlError
from lamplighter.model import LAMP_OFF, LampState, Signal

DEFAULT_TIMEOUT = 5.0
MESSAGES_PER_SECOND = 2
BASE_TOPIC = "base_topic"
DEFAULT_BASE_TOPIC = "zigbee2mqtt"
WARNING = "warning"
DURATION = "duration"
DEFAULT_DURATION = 1800
LONGEST_DURATION = 65535  # the Zigbee IAS WD warning duration is 16 bits of seconds
WARNING_MODES = ("burglar", "fire", "emergency", "police_panic", "fire_panic", "emergency_panic")
FULL = 254  # Zigbee2MQTT's brightness scale
INSTANT = {"transition": 0}
READ = json.dumps({"state": ""})
STOP = {"warning": {"mode": "stop"}}
EXAMPLE = "z2m://192.168.1.5/desk_lamp"
STATE_WORDS = "a Zigbee2MQTT device state"

Body = dict[str, Any]


class Zigbee2MqttDriver(Driver):
    """A Zigbee light; `from_url` gives a Zigbee2MqttSirenDriver for `?warning=MODE`."""

    scheme = "z2m"
    min_interval = 1.0
    pushes_state = True

    def __init__(self, url: LampUrl, name: str, base_topic: str, timeout: float) -> None:
        super().__init__(url)
        self._topic = f"{base_topic}/{name}"
        self._bridge_topic = f"{base_topic}/bridge/state"
        self._device = MqttDevice(broker_address(url), self.url(), timeout, RateLimit(MESSAGES_PER_SECOND))
        self._readings: Readings[Body] = Readings()

    @classmethod
    def from_url(cls, url: LampUrl) -> Zigbee2MqttDriver:
        require(url, "the MQTT broker's address", url.host, EXAMPLE)
        check_options(url, {BASE_TOPIC, TIMEOUT, TLS, WARNING, DURATION})
        name = topic_name(url, "the friendly name", unquote(url.path.removeprefix("/")))
        require(url, "the device's friendly name as the path", name, EXAMPLE)
        base = topic_name(url, BASE_TOPIC, url.param(BASE_TOPIC, DEFAULT_BASE_TOPIC))
        require(url, "a base_topic", base, f"{EXAMPLE}?base_topic=zigbee2mqtt")
        broker_address(url)  # checks the tls option now, not at the first alert
        timeout = timeout_option(url, DEFAULT_TIMEOUT)
        if url.param(WARNING):
            return Zigbee2MqttSirenDriver(url, name, base, timeout, _warning_mode(url), _duration(url))
        if url.param(DURATION):
            raise LampUrlError(url.text(), "duration is for sirens, with warning=MODE")
        return cls(url, name, base, timeout)

    async def apply(self, state: LampState, showing: Signal | None = None) -> None:
        body = self._readings.native(state) or _command(state)
        reports = await self._reachable()
        await self._device.request(f"{self._topic}/set", json.dumps({**body, **INSTANT}), reports)

    async def read_state(self) -> LampState:
        reports = await self._reachable()
        payload = await self._device.request(f"{self._topic}/get", READ, reports)
        with answer_of(self.url(), STATE_WORDS):
            data = json.loads(payload)
            shown = _lamp_state(data)
            return self._readings.remember(shown, _restorable(data))

    async def start(self) -> None:
        (await self._device.inbox(self._topic)).listen(self._pushed)
        for offline_topic in (self._bridge_topic, f"{self._topic}/availability"):
            (await self._device.inbox(offline_topic)).listen(self._offline_said)

    async def close(self) -> None:
        await self._device.close()

    def _pushed(self, payload: bytes | None) -> None:
        """Zigbee2MQTT published the device's state (None: the broker connection broke)."""
        if payload is None:
            self.tell(None)
            return
        data = parse_report(payload, self.url())
        try:
            with answer_of(self.url(), STATE_WORDS):
                self.tell(self._readings.remember(_lamp_state(data), _restorable(data)))
        except DriverError:
            self.tell(None)  # not a state after all: read the device before the next alert

    def _offline_said(self, payload: bytes | None) -> None:
        if payload is None or _says_offline(payload):
            self.tell(None)

    async def _reachable(self) -> Inbox:
        """The device's state reports, once Zigbee2MQTT and the device are not known to be offline."""
        reports = await self._device.inbox(self._topic)
        bridge = await self._device.inbox(self._bridge_topic)
        availability = await self._device.inbox(f"{self._topic}/availability")
        if _says_offline(bridge.latest):
            raise DeviceOffline(f"{self.url()}: Zigbee2MQTT is offline")
        if _says_offline(availability.latest):
            raise DeviceOffline(f"{self.url()}: Zigbee2MQTT reports the device offline")
        return reports


class Zigbee2MqttSirenDriver(Zigbee2MqttDriver):
    """A Zigbee warning device: it sounds while the state is on."""

    pushes_state = False  # Zigbee2MQTT publishes no state for a warning

    def __init__(self, url: LampUrl, name: str, base_topic: str, timeout: float, mode: str, duration: int) -> None:
        super().__init__(url, name, base_topic, timeout)
        self._warning = {"warning": {"mode": mode, "level": "very_high", "strobe": True, "duration": duration}}
        self._sent = LAMP_OFF

    async def apply(self, state: LampState, showing: Signal | None = None) -> None:
        await self._reachable()
        await self._device.publish(f"{self._topic}/set", json.dumps(self._warning if state.on else STOP))
        self._sent = state

    async def read_state(self) -> LampState:
        await self._reachable()
        return self._sent


def _warning_mode(url: LampUrl) -> str:
    mode = url.param(WARNING)
    if mode not in WARNING_MODES:
        raise LampUrlError(url.text(), f"warning must be one of {', '.join(WARNING_MODES)}, not {mode!r}")
    return mode


def _duration(url: LampUrl) -> int:
    text = url.param(DURATION, str(DEFAULT_DURATION))
    if not text.isdigit() or not 0 < int(text) <= LONGEST_DURATION:
        raise LampUrlError(url.text(), f"duration must be whole seconds from 1 to {LONGEST_DURATION}, not {text!r}")
    return int(text)


def _says_offline(payload: bytes | None) -> bool:
    """Whether an availability or bridge state message says offline (`{"state": "offline"}`, or plain `offline`)."""
    if payload is None:
        return False
    try:
        data = json.loads(payload)
    except ValueError:
        data = payload.decode(errors="replace")
    state = data.get("state") if isinstance(data, dict) else data
    return state == "offline"


def _command(state: LampState) -> Body:
    """The `/set` body that makes a light show `state`; off keeps the colour for the next switch-on."""
    hue, saturation, _ = to_hsv(state.color)
    body: Body = {"state": "ON" if state.on else "OFF", "color": {"hex": from_hsv(hue, saturation)}}
    if state.on:
        body["brightness"] = max(1, round(value_of(state.color) * state.brightness * FULL / 100))
    return body


def _lamp_state(data: Body) -> LampState:
    return LampState(on=data["state"] == "ON", color=_shown_color(data),
                     brightness=round(float(data.get("brightness", FULL)) * 100 / FULL))


def _shown_color(data: Body) -> str:
    color = data.get("color") or {}
    if "x" in color:
        return from_xy(float(color["x"]), float(color["y"]))
    if "hue" in color:
        return from_hsv(float(color["hue"]), float(color["saturation"]) / 100)
    return "#ffffff"  # a white-only lamp (or one in colour temperature without colour sync)


def _restorable(data: Body) -> Body:
    """The `/set` body that brings the lamp back to exactly what it reports now."""
    body: Body = {"state": data["state"]}
    if data["state"] == "ON" and "brightness" in data:
        body["brightness"] = data["brightness"]
    color, mode = data.get("color") or {}, data.get("color_mode")
    if mode == "color_temp" and "color_temp" in data:
        body["color_temp"] = data["color_temp"]
    elif mode == "hs" and "hue" in color:
        body["color"] = {"hue": color["hue"], "saturation": color["saturation"]}
    elif "x" in color:
        body["color"] = {"x": color["x"], "y": color["y"]}
    return body
