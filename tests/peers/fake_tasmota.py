"""A Tasmota device (firmware 13/14) with its MQTT face on a real broker and its web face on loopback.

`TasmotaFirmware` is the device: relays, then a light (`Light.device` is the output after
the relays), and the commands drivers use, answered as the firmware answers them:

- `Power<x>` ON/OFF/TOGGLE/1/0/2 -> `{"POWER1": "ON"}` (`POWER` on a one-output device),
  also published as `stat/TOPIC/POWER<x>`; `Color<1,2>` `#RRGGBB`, `RRGGBB`, `r,g,b` or
  one hex digit pair per channel (3 for RGB, 5 for RGBCW); `Dimmer`, `HsbColor h,s,b`,
  `CT` (153-500, RGBCW lights), `Fade`, `Speed`, `Speed2` (fade speed for the next light
  change only; 0 = no fade); each light command answers the light state
  (`{"POWER":..., "Dimmer":..., "Color":..., "HSBColor":..., "Channel": [...]}` plus
  `White` and `CT` on RGBCW). A light command that lights a dark light switches it on,
  and one that darkens it switches it off (SetOption20 0, the default).
- `State`: the state report, with `Fade`, `Speed`, `Scheme`, `LedTable` for a light.
- `Backlog` / `Backlog0`: `;`-separated commands (no answer of its own, like the firmware).
- Anything else: `{"Command": "Unknown"}`.

The light is drawn as the firmware's light loop draws it: the light commands of one
command line (a whole Backlog0) show together at its end, a power change at once; a
change fades when `Fade` is on, unless `Speed2 0` came before it. Every change of what
the light or a relay shows is kept in `changes` (time, outputs, channels, and whether it
faded), every command line received in `commands` (time, line).

`FakeTasmota` is the MQTT face: `cmnd/TOPIC/<command>` in, answers on `stat/TOPIC/RESULT`,
`tele/TOPIC/LWT` `Online` (retained; `Offline` is its last will); `press()` is its own
button (the new power published as for a command), `tele()` its periodic `tele/TOPIC/STATE`. `unplug()` makes it vanish
(the broker's `Offline` LWT, or with `lwt=False` just silence, as before the keep-alive
runs out); `plug()` brings it back. `FakeTasmotaHttp` is the web face: `GET /cm?cmnd=...`
with `user`/`password` when a web password is set (else `{"WARNING": "Need user=...`)
answering the command's results merged into one object, as the firmware's web console does.
"""

from __future__ import annotations

import colorsys
import json
import threading
import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.peers.http_fake import FakeDevice

READY_TIMEOUT = 10.0
CT_WARMEST, CT_COLDEST = 500, 153
LIGHT_COMMANDS = frozenset({"color", "dimmer", "hsbcolor", "ct", "fade", "speed"})
STATE_ONLY = frozenset({"Scheme", "Fade", "Speed", "LedTable"})  # in the answer to State, not in tele/STATE
NEED_LOGIN = {"WARNING": "Need user=<username>&password=<password>"}

Answer = dict[str, Any]
Published = tuple[str, Answer | str]  # (stat topic suffix, payload)


@dataclass(frozen=True)
class Change:
    """What the device showed after a command changed it."""

    at: float
    power: tuple[bool, ...]
    channels: tuple[int, ...]
    faded: bool


@dataclass
class TasmotaFirmware:
    relays: int = 0
    light_channels: int = 3  # 0: no light; 3: RGB; 5: RGBCW
    power: list[bool] = field(default_factory=list)
    channels: list[int] = field(default_factory=list)
    fade: bool = False
    speed: int = 1
    web_password: str = ""
    changes: list[Change] = field(default_factory=list)
    commands: list[tuple[float, str]] = field(default_factory=list)
    _once: int | None = None  # Speed2: the fade speed of the next light change only
    _drawn: tuple[bool, tuple[int, ...]] | None = None  # what the light last showed (power, channels)

    def __post_init__(self) -> None:
        self.power = self.power or [False] * self.outputs
        self.channels = self.channels or [255] * self.light_channels
        if self.light_channels:
            self._drawn = (self.power[self.light_output - 1], tuple(self.channels))

    @property
    def outputs(self) -> int:
        return self.relays + (1 if self.light_channels else 0)

    @property
    def light_output(self) -> int:
        """The light's power number (Light.device)."""
        return self.relays + 1

    def execute(self, line: str) -> list[Published]:
        """Run one command line as received; what the device publishes in answer (for the web face, merged)."""
        self.commands.append((time.monotonic(), line))
        answers = self._run(line)
        self._animate()  # the firmware's 50 ms light loop: the pass's changes show together
        return answers

    def _run(self, line: str) -> list[Published]:
        command, _, argument = line.strip().partition(" ")
        name = command.rstrip("0123456789").lower()
        index = int(command[len(name):] or 0)
        if name == "backlog":
            return [answer for part in argument.split(";") if part.strip() for answer in self._run(part)]
        handler = getattr(self, f"_cmd_{name}", None)
        if handler is None or (name in LIGHT_COMMANDS and not self.light_channels):
            return [("RESULT", {"Command": "Unknown"})]
        result: list[Published] = handler(index, argument.strip())
        return result

    def power_key(self, number: int) -> str:
        return "POWER" if self.outputs == 1 else f"POWER{number}"

    def state_report(self) -> Answer:
        report: Answer = {"Time": "2027-01-15T08:00:00", "Uptime": "0T00:10:00", "UptimeSec": 600, "Heap": 25,
                          "SleepMode": "Dynamic", "Sleep": 50, "LoadAvg": 19, "MqttCount": 1}
        for number in range(1, self.relays + 1):
            report[self.power_key(number)] = _on_off(self.power[number - 1])
        if self.light_channels:
            report |= self._light_state() | {"Scheme": 0, "Fade": _on_off(self.fade), "Speed": self.speed,
                                               "LedTable": "ON"}
        report["Wifi"] = {"AP": 1, "SSId": "home", "RSSI": 80, "Signal": -60, "LinkCount": 1, "Downtime": "0T00:00:03"}
        return report

    # ---- commands (Cmnd* in the firmware) --------------------------------------------------

    def _cmd_power(self, index: int, argument: str) -> list[Published]:
        number = index or 1
        if argument:
            now = self.power[number - 1]
            wanted = {"on": True, "1": True, "off": False, "0": False, "toggle": not now, "2": not now}
            self._switch(number, wanted[argument.lower()])
        key, shown = self.power_key(number), _on_off(self.power[number - 1])
        return [("RESULT", {key: shown}), (key, shown)]

    def _cmd_state(self, index: int, argument: str) -> list[Published]:
        return [("RESULT", self.state_report())]

    def _cmd_color(self, index: int, argument: str) -> list[Published]:
        if argument:
            self._set_channels(_parse_color(argument, self.light_channels))
        return [("RESULT", self._light_state())]

    def _cmd_dimmer(self, index: int, argument: str) -> list[Published]:
        if argument:
            top = max(self.channels) or 255
            level = round(int(argument) * 255 / 100)
            self._set_channels([round(c * level / top) if max(self.channels) else level for c in self.channels])
        return [("RESULT", self._light_state())]

    def _cmd_hsbcolor(self, index: int, argument: str) -> list[Published]:
        if argument:
            hue, saturation, brightness = (int(part) for part in argument.split(","))
            rgb = colorsys.hsv_to_rgb(hue / 360, saturation / 100, brightness / 100)
            self._set_channels([round(c * 255) for c in rgb] + [0] * (self.light_channels - 3))
        return [("RESULT", self._light_state())]

    def _cmd_ct(self, index: int, argument: str) -> list[Published]:
        if argument and self.light_channels == 5:
            level = max(self.channels)
            warm = (int(argument) - CT_COLDEST) / (CT_WARMEST - CT_COLDEST)
            self._set_channels([0, 0, 0, round(level * (1 - warm)), round(level * warm)])
        return [("RESULT", self._light_state())]

    def _cmd_fade(self, index: int, argument: str) -> list[Published]:
        if argument:
            self.fade = argument.lower() in ("1", "on")
        return [("RESULT", {"Fade": _on_off(self.fade)})]

    def _cmd_speed(self, index: int, argument: str) -> list[Published]:
        if index == 2:
            self._once = int(argument)
            return [("RESULT", {"Speed2": self._once})]
        if argument:
            self.speed = int(argument)
        return [("RESULT", {"Speed": self.speed})]

    # ---- the light -------------------------------------------------------------------------

    def _set_channels(self, channels: list[int]) -> None:
        """A light command: lighting a dark light switches it on, darkening it switches it off (SetOption20 0)."""
        self.channels = channels
        lit = any(channels)
        if lit != self.power[self.light_output - 1]:
            self._switch(self.light_output, lit)

    def _switch(self, number: int, on: bool) -> None:
        """A power change: a relay switches; the light is redrawn at once (LightSetPower runs LightAnimate)."""
        self.power[number - 1] = on
        if number == self.light_output and self.light_channels:
            self._animate()
        else:
            self.changes.append(Change(time.monotonic(), tuple(self.power), tuple(self.channels), faded=False))

    def _animate(self) -> None:
        """Draw the light if what it should show changed; it fades unless Fade is off or Speed2 0 came first."""
        if not self.light_channels:
            return
        shown = (self.power[self.light_output - 1], tuple(self.channels))
        if shown == self._drawn:
            return
        faded = self.fade if self._once is None else self._once > 0
        self._once, self._drawn = None, shown
        self.changes.append(Change(time.monotonic(), tuple(self.power), tuple(self.channels), faded))

    def _light_state(self) -> Answer:
        red, green, blue = self.channels[:3]
        hue, saturation, value = colorsys.rgb_to_hsv(red / 255, green / 255, blue / 255)
        state: Answer = {self.power_key(self.light_output): _on_off(self.power[self.light_output - 1]),
                         "Dimmer": round(max(self.channels) * 100 / 255),
                         "Color": "".join(f"{c:02X}" for c in self.channels),
                         "HSBColor": f"{round(hue * 360)},{round(saturation * 100)},{round(value * 100)}"}
        if self.light_channels == 5:
            cold, warm = self.channels[3:]
            state["White"] = round(max(cold, warm) * 100 / 255)
            state["CT"] = round(CT_COLDEST + (CT_WARMEST - CT_COLDEST) * warm / ((cold + warm) or 1))
        state["Channel"] = [round(c * 100 / 255) for c in self.channels]
        return state


def _on_off(on: bool) -> str:
    return "ON" if on else "OFF"


def _parse_color(text: str, channels: int) -> list[int]:
    if "," in text:
        values = [int(part) for part in text.split(",")]
    else:
        digits = text.lstrip("#")
        values = [int(digits[i:i + 2], 16) for i in range(0, len(digits), 2)]
    return (values + [0] * channels)[:channels]


class FakeTasmota:
    """The MQTT face of a TasmotaFirmware, on the broker at `port`, under `topic`."""

    def __init__(self, port: int, topic: str, firmware: TasmotaFirmware,
                 fulltopic: str = "%prefix%/%topic%/") -> None:
        self.port = port
        self.firmware = firmware
        self.online = True
        self._topics = {prefix: fulltopic.replace("%prefix%", prefix).replace("%topic%", topic)
                        for prefix in ("cmnd", "stat", "tele")}
        self._subscribed = threading.Event()
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"fake-tasmota-{topic}-{id(self)}")
        self._client.will_set(self.lwt_topic, "Offline", qos=1, retain=True)
        self._client.reconnect_delay_set(min_delay=0.05, max_delay=0.5)
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = lambda *_: self._subscribed.set()
        self._client.on_message = self._on_message

    @property
    def lwt_topic(self) -> str:
        return f"{self._topics['tele']}LWT"

    def unplug(self, lwt: bool = True) -> None:
        """The device leaves the network: silence, and (once its keep-alive ran out) the broker's Offline LWT."""
        self.online = False
        if lwt:
            self._client.publish(self.lwt_topic, "Offline", qos=1, retain=True)

    def plug(self) -> None:
        self.online = True
        self._client.publish(self.lwt_topic, "Online", qos=1, retain=True)

    def press(self, number: int = 1) -> None:
        """The device's own button toggles output `number`: it publishes the new power as for a command."""
        self._publish(self.firmware.execute(f"Power{number} TOGGLE"))

    def tele(self) -> None:
        """The periodic report (every TelePeriod, 300 s by default): `tele/TOPIC/STATE`."""
        report = {key: value for key, value in self.firmware.state_report().items() if key not in STATE_ONLY}
        self._client.publish(f"{self._topics['tele']}STATE", json.dumps(report), qos=1)

    def start(self) -> FakeTasmota:
        self._client.connect("127.0.0.1", self.port, keepalive=10)
        self._client.loop_start()
        if not self._subscribed.wait(READY_TIMEOUT):
            raise RuntimeError(f"the fake Tasmota did not connect to the broker on port {self.port}")
        return self

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def __enter__(self) -> FakeTasmota:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        client.subscribe(f"{self._topics['cmnd']}#", qos=1)
        client.publish(self.lwt_topic, "Online" if self.online else "Offline", qos=1, retain=True)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        if not self.online:
            return
        command = message.topic.removeprefix(self._topics["cmnd"])
        payload = message.payload.decode()
        self._publish(self.firmware.execute(f"{command} {payload}".strip()))

    def _publish(self, answers: list[Published]) -> None:
        for suffix, answer in answers:
            text = answer if isinstance(answer, str) else json.dumps(answer)
            self._client.publish(f"{self._topics['stat']}{suffix}", text, qos=1)


class FakeTasmotaHttp(FakeDevice):
    """The web face of a TasmotaFirmware: `GET /cm?cmnd=...`."""

    def __init__(self, firmware: TasmotaFirmware) -> None:
        self.firmware = firmware
        super().__init__(Starlette(routes=[Route("/cm", self._command)]))

    async def _command(self, request: Request) -> JSONResponse:
        params = request.query_params
        password = self.firmware.web_password
        if password and (params.get("user") != "admin" or params.get("password") != password):
            return JSONResponse(NEED_LOGIN)
        merged: Answer = {}
        backlog = params.get("cmnd", "").lower().startswith("backlog")  # queued: the answer comes before the results
        for suffix, answer in self.firmware.execute(params.get("cmnd", "")):
            if isinstance(answer, dict) and suffix == "RESULT" and not backlog:
                merged |= answer
        return JSONResponse(merged)
