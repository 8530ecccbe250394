"""A Zigbee2MQTT bridge and its devices on a real broker, speaking Zigbee2MQTT's MQTT API (there is no emulator).

What it does, as Zigbee2MQTT 1.3x/2.x with `availability` enabled does:

- on connect: `zigbee2mqtt/bridge/state` = `{"state": "online"}` (retained; the same topic
  with `offline` is its last will), and for every device `zigbee2mqtt/NAME/availability`
  = `{"state": "online"}` (retained) and its state on `zigbee2mqtt/NAME` (retained only
  with `retain=True`, as a device's `retain` option; Zigbee2MQTT's default is not to).
- `zigbee2mqtt/NAME/set` with a JSON object: `state` (ON, OFF, TOGGLE), `brightness`
  (0-254; without `state` it switches on, as moveToLevelWithOnOff does), `color` as `hex`,
  `r`/`g`/`b` (Home Assistant's JSON light sends that), `x`/`y` or `hue`/`saturation`
  (colour mode `xy` or `hs`; `hex` and `r`/`g`/`b` are converted to xy with the Wide-RGB
  D65 formula Zigbee2MQTT uses, 4 decimals), `color_temp` in mireds (mode
  `color_temp`; `color` follows it onto the Planckian locus, as `color_sync` does),
  `transition`. Then the whole state is published, as Zigbee2MQTT's optimistic publish
  does. A siren takes `warning` (`mode`, `level`, `strobe`, `duration`; `stop` ends it)
  and publishes nothing, as a real warning device.
- `zigbee2mqtt/NAME/get`: the whole state is published again.
- A device that is `unplug`ged publishes availability `offline` and takes no command
  (Zigbee2MQTT cannot reach it); `plug` brings it back. `stop()` ends the bridge the way
  a crash does: its last will says offline.

Every command is kept in `commands` with its arrival time (time.monotonic(), and
time.perf_counter() as `arrived`). `set(name, ...)` changes a device as its own switch
does: the new state is published, no command. The MQTT
client is paho's, in its own thread, reconnecting by itself when the broker restarts.

    with FakeZigbee2Mqtt(broker.port) as z2m:
        z2m.add_light("desk", state="ON", brightness=120, color_temp=370, color_mode="color_temp")
"""

from __future__ import annotations

import copy
import json
import threading
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from lamplighter.drivers.color import to_xy
from tests.peers.fake_hue import mirek_xy

READY_TIMEOUT = 10.0
FULL = 254
ONLINE = json.dumps({"state": "online"})
OFFLINE = json.dumps({"state": "offline"})

State = dict[str, Any]


@dataclass(frozen=True)
class Command:
    """One message to a device, as the bridge received it."""

    at: float
    device: str
    kind: str  # "set" or "get"
    body: State
    arrived: float = 0.0  # time.perf_counter() on arrival


class FakeZigbee2Mqtt:
    def __init__(self, port: int, base_topic: str = "zigbee2mqtt", retain: bool = False) -> None:
        self.port = port
        self.base = base_topic
        self.retain = retain
        self.commands: list[Command] = []
        self.warnings: dict[str, State] = {}  # siren name -> the last warning it was given
        self._devices: dict[str, State] = {}
        self._sirens: set[str] = set()
        self._unplugged: set[str] = set()
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"fake-z2m-{id(self)}",
                                   protocol=mqtt.MQTTv5)  # v5: stop() can end it with its last will
        self._client.will_set(f"{base_topic}/bridge/state", OFFLINE, qos=1, retain=True)
        self._client.reconnect_delay_set(min_delay=0.05, max_delay=0.5)
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = lambda *_: self._subscribed.set()
        self._client.on_message = self._on_message

    # ---- devices -------------------------------------------------------------------------

    def add_light(self, name: str, **state: Any) -> None:
        """A colour light: `state` overrides on, full brightness, white in xy mode."""
        light: State = {"state": "ON", "brightness": FULL, "color": {"x": 0.3227, "y": 0.329}, "color_mode": "xy",
                        "color_temp": 153, "linkquality": 120, **state}
        self._add(name, light)

    def add_siren(self, name: str) -> None:
        self._sirens.add(name)
        self._add(name, {"battery": 100, "linkquality": 90, "tamper": False})

    def set(self, name: str, **state: Any) -> None:
        """The device changed by itself (its switch, another app): it publishes its new state."""
        with self._lock:
            self._devices[name].update(copy.deepcopy(state))
        self._publish_state(name)

    def state(self, name: str) -> State:
        with self._lock:
            return copy.deepcopy(self._devices[name])

    def sets(self, name: str) -> list[Command]:
        return [c for c in list(self.commands) if c.device == name and c.kind == "set"]

    def unplug(self, name: str) -> None:
        """The device drops off the Zigbee network: availability offline, commands go nowhere."""
        self._unplugged.add(name)
        self._publish(f"{self.base}/{name}/availability", OFFLINE, retain=True)

    def plug(self, name: str) -> None:
        self._unplugged.discard(name)
        self._publish(f"{self.base}/{name}/availability", ONLINE, retain=True)

    # ---- lifecycle -----------------------------------------------------------------------

    def start(self) -> FakeZigbee2Mqtt:
        self._client.connect("127.0.0.1", self.port, keepalive=10)
        self._client.loop_start()
        if not self._subscribed.wait(READY_TIMEOUT):
            raise RuntimeError(f"the fake Zigbee2MQTT did not connect to the broker on port {self.port}")
        return self

    def stop(self) -> None:
        """End the bridge as a crash does: the broker publishes its last will (bridge offline)."""
        if self._client.is_connected():
            self._client.disconnect(reasoncode=ReasonCode(PacketTypes.DISCONNECT, "Disconnect with will message"))
        self._client.loop_stop()

    def __enter__(self) -> FakeZigbee2Mqtt:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    # ---- the bridge ----------------------------------------------------------------------

    def _add(self, name: str, state: State) -> None:
        with self._lock:
            self._devices[name] = state
        if self._client.is_connected():
            self._announce(name)

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        client.subscribe(f"{self.base}/#", qos=1)
        self._publish(f"{self.base}/bridge/state", ONLINE, retain=True)
        for name in list(self._devices):
            self._announce(name)

    def _announce(self, name: str) -> None:
        online = name not in self._unplugged
        self._publish(f"{self.base}/{name}/availability", ONLINE if online else OFFLINE, retain=True)
        self._publish_state(name)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        at, arrived = time.monotonic(), time.perf_counter()
        name, _, kind = message.topic.removeprefix(f"{self.base}/").rpartition("/")
        if kind not in ("set", "get") or name not in self._devices:
            return
        try:
            body = json.loads(message.payload)
        except ValueError:
            return  # Zigbee2MQTT logs "Invalid message" and ignores it
        self.commands.append(Command(at, name, kind, body, arrived))
        if name in self._unplugged:
            return  # Zigbee2MQTT logs "Publish 'set' ... failed" and publishes nothing
        if kind == "set" and name in self._sirens:
            self.warnings[name] = body.get("warning", {})
            return
        if kind == "set":
            with self._lock:
                _apply(self._devices[name], body)
        self._publish_state(name)

    def _publish_state(self, name: str) -> None:
        with self._lock:
            payload = json.dumps(self._devices[name])
        self._publish(f"{self.base}/{name}", payload, retain=self.retain)

    def _publish(self, topic: str, payload: str, retain: bool = False) -> None:
        self._client.publish(topic, payload, qos=1, retain=retain)


def _apply(state: State, body: State) -> None:
    """A light's state after a `/set`, as Zigbee2MQTT's converters and optimistic publish leave it."""
    switch = str(body.get("state", "")).upper()
    if switch == "TOGGLE":
        switch = "OFF" if state["state"] == "ON" else "ON"
    if "brightness" in body and switch != "OFF":
        state["brightness"] = max(1, min(FULL, int(body["brightness"])))
        switch = switch or "ON"
    if "color" in body:
        state["color"], state["color_mode"] = _color(body["color"])
    if "color_temp" in body:
        state["color_temp"], state["color_mode"] = int(body["color_temp"]), "color_temp"
        state["color"] = mirek_xy(state["color_temp"])
    if switch in ("ON", "OFF"):
        state["state"] = switch


def _color(color: State) -> tuple[State, str]:
    if "hex" in color or "r" in color:
        x, y = to_xy(color["hex"] if "hex" in color else "#{:02x}{:02x}{:02x}".format(
            *(int(color[c]) for c in "rgb")))
        return {"x": x, "y": y}, "xy"
    if "x" in color:
        return {"x": round(float(color["x"]), 4), "y": round(float(color["y"]), 4)}, "xy"
    return {"hue": color["hue"], "saturation": color["saturation"]}, "hs"
