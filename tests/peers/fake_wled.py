"""A WLED strip on loopback, speaking its JSON API and websocket as WLED 0.14 does (there is no WLED emulator).

- `GET /json/state`: the whole state (`on`, `bri`, `transition`, `mainseg`, `seg` with
  `col` as up to three [r, g, b] colours, `fx`, `sx`, `ix`, `pal`, `on`, `bri`, `frz` ...);
  `GET /json/info` (`ver`, `leds`, `name`, `mac`, `ws`: the number of websocket clients,
  -1 would say "no websocket" ...); `GET /json/si` gives state and info; `GET /json` both
  plus effect and palette names; `GET /presets.json` the presets (`{"0": {}}`: none saved).
- `POST /json/state`: a partial state merged into the current one. `on` may be `"t"`
  (toggle); `seg` is a list whose objects name their segment by `id` (else by position)
  or one object for every selected segment; a colour is [r, g, b(, w)] or "RRGGBB";
  `tt` is the transition of this change only (in 100 ms units), `transition` the lasting
  default (7 = 700 ms, WLED's default). With `"v": true` the answer is the new state,
  else `{"success": true}`. Invalid JSON: 400 `{"error": 9}`.
- The websocket at `/ws`: on connect WLED sends `{"state": ..., "info": ...}`; after every
  change, from HTTP or from a websocket message, it pushes that again to every connected
  client. A client may send a state change over the websocket (as to `POST /json/state`;
  with `"v": true` WLED answers that client with the full state as well).
- One request at a time, as the ESP does: the fake records how many were ever in flight
  at once (`most_in_flight`).

python-wled (Home Assistant's WLED integration) always talks to port 80: give the fake a
loopback address of its own, `FakeWled(host="127.3.4.5", port=80)` (as root).

Every accepted change is kept in `changes` as (time.monotonic(), transition in ms, state
after), and in `arrivals` as (time.perf_counter() when the request or websocket message
arrived, the change it asked for).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import time
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from tests.peers.http_fake import FakeDevice, arrived, json_body

EFFECT_NAMES = ["Solid", "Blink", "Breathe", "Wipe", "Wipe Random", "Random Colors", "Sweep", "Dynamic", "Colorloop",
                "Rainbow"]
SEGMENT_KEYS = ("on", "bri", "frz", "fx", "sx", "ix", "pal", "c1", "c2", "c3", "sel", "rev", "mi")


def segment(seg_id: int, start: int, stop: int, color: list[int], **fields: Any) -> dict[str, Any]:
    """A segment as WLED reports it."""
    return {"id": seg_id, "start": start, "stop": stop, "len": stop - start, "grp": 1, "spc": 0, "of": 0, "on": True,
            "frz": False, "bri": 255, "cct": 127, "col": [color, [0, 0, 0], [0, 0, 0]], "fx": 0, "sx": 128, "ix": 128,
            "pal": 0, "c1": 128, "c2": 128, "c3": 16, "sel": True, "rev": False, "mi": False, "o1": False, "o2": False,
            "o3": False, "si": 0, "m12": 0, **fields}


class FakeWled(FakeDevice):
    def __init__(self, leds: int = 30, *, host: str = "127.0.0.1", port: int | None = None) -> None:
        super().__init__(Starlette(routes=[
            Route("/json", self._all, methods=["GET"]),
            Route("/json/info", self._info, methods=["GET"]),
            Route("/json/si", self._state_info, methods=["GET"]),
            Route("/json/state", self._get_state, methods=["GET"]),
            Route("/json/state", self._post_state, methods=["POST"]),
            Route("/presets.json", self._presets, methods=["GET"]),
            WebSocketRoute("/ws", self._websocket),
        ]), host=host, port=port)
        self.leds = leds
        self.state: dict[str, Any] = {
            "on": True, "bri": 128, "transition": 7, "ps": -1, "pl": -1, "lor": 0, "mainseg": 0,
            "nl": {"on": False, "dur": 60, "mode": 1, "tbri": 0, "rem": -1}, "udpn": {"send": False, "recv": True},
            "seg": [segment(0, 0, leds, [255, 160, 0])]}
        self.changes: list[tuple[float, int, dict[str, Any]]] = []
        self.arrivals: list[tuple[float, dict[str, Any]]] = []
        self.sockets: set[WebSocket] = set()
        self._pushes: set[asyncio.Task[None]] = set()

    @property
    def posts(self) -> list[float]:
        """Arrival times of the POSTs (the commands)."""
        return [r.at for r in self.received if r.method == "POST"]

    def set_state(self, change: dict[str, Any]) -> None:
        """A change made at the strip itself (its button, its own app): pushed to websocket clients, no command."""
        self._merge(change)
        self._push_soon()

    def color(self, seg_id: int = 0) -> list[int]:
        return list(self._segment(seg_id)["col"][0][:3])

    async def _all(self, request: Request) -> JSONResponse:
        return JSONResponse({"state": self.state, "info": self._info_body(), "effects": EFFECT_NAMES,
                             "palettes": ["Default"]})

    async def _info(self, request: Request) -> JSONResponse:
        return JSONResponse(self._info_body())

    async def _state_info(self, request: Request) -> JSONResponse:
        return JSONResponse({"state": self.state, "info": self._info_body()})

    async def _get_state(self, request: Request) -> JSONResponse:
        return JSONResponse(self.state)

    async def _presets(self, request: Request) -> JSONResponse:
        return JSONResponse({"0": {}})

    async def _post_state(self, request: Request) -> JSONResponse:
        at = arrived(request)
        try:
            change = await json_body(request)
        except ValueError:
            return JSONResponse({"error": 9}, status_code=400)
        if not isinstance(change, dict):
            return JSONResponse({"error": 9}, status_code=400)
        self._change(at, change)
        return JSONResponse(self.state if change.get("v") else {"success": True})

    async def _websocket(self, socket: WebSocket) -> None:
        await socket.accept()
        self.sockets.add(socket)
        try:
            await socket.send_json(self._full())
            while True:
                raw = await socket.receive_text()
                at = time.perf_counter()
                with contextlib.suppress(ValueError):
                    change = json.loads(raw)
                    if isinstance(change, dict):
                        self._change(at, change)
                        if change.get("v"):
                            await socket.send_json(self._full())
        except WebSocketDisconnect:
            pass
        finally:
            self.sockets.discard(socket)

    def _change(self, at: float, change: dict[str, Any]) -> None:
        """Apply a state change, keep it, and push the new state to every websocket client."""
        self._merge(change)
        transition = change.get("tt", self.state["transition"]) * 100
        self.changes.append((time.monotonic(), transition, copy.deepcopy(self.state)))
        self.arrivals.append((at, change))
        self._push_soon()

    def _push_soon(self) -> None:
        if self.sockets:
            push = asyncio.create_task(self._push(json.dumps(self._full())))
            self._pushes.add(push)
            push.add_done_callback(self._pushes.discard)

    async def _push(self, text: str) -> None:
        for socket in list(self.sockets):
            with contextlib.suppress(Exception):  # a client that just left
                await socket.send_text(text)

    def _full(self) -> dict[str, Any]:
        return {"state": self.state, "info": self._info_body()}

    def _merge(self, change: dict[str, Any]) -> None:
        if "on" in change:
            self.state["on"] = not self.state["on"] if change["on"] == "t" else bool(change["on"])
        for key in ("bri", "transition"):
            if key in change:
                self.state[key] = int(change[key])
        segments = change.get("seg", [])
        if isinstance(segments, dict):
            for seg in self.state["seg"]:
                if seg["sel"]:
                    self._merge_segment(seg, segments)
            return
        for position, seg_change in enumerate(segments):
            self._merge_segment(self._segment(seg_change.get("id", position)), seg_change)

    def _merge_segment(self, seg: dict[str, Any], change: dict[str, Any]) -> None:
        for key in SEGMENT_KEYS:
            if key in change:
                seg[key] = change[key]
        for slot, color in enumerate(change.get("col", [])[:3]):
            seg["col"][slot] = _rgb(color)

    def _segment(self, seg_id: int) -> dict[str, Any]:
        return next(s for s in self.state["seg"] if s["id"] == seg_id)

    def _info_body(self) -> dict[str, Any]:
        return {"ver": "0.14.4", "vid": 2405180,
                "leds": {"count": self.leds, "pwr": 0, "fps": 42, "maxpwr": 850, "maxseg": 32, "seglc": [1],
                         "lc": 1, "rgbw": False, "wv": 0, "cct": False},
                "str": False, "name": "WLED", "udpport": 21324, "live": False, "liveseg": -1, "lm": "", "lip": "",
                "ws": len(self.sockets), "fxcount": len(EFFECT_NAMES), "palcount": 1, "cpalcount": 0,
                "wifi": {"bssid": "", "rssi": -60, "signal": 80, "channel": 1}, "fs": {"u": 12, "t": 983, "pmt": 0},
                "ndc": 0, "arch": "esp32", "core": "v3.3.6-16-gcc5440f6a2", "lwip": 0, "freeheap": 150000,
                "uptime": 1000, "opt": 79, "brand": "WLED", "product": "FOSS", "mac": "a8032a123456",
                "ip": self.host}


def _rgb(color: list[int] | str) -> list[int]:
    """A colour as WLED stores it: [r, g, b]; a 4th (white) value is dropped by this RGB strip."""
    if isinstance(color, str):
        value = int(color, 16)
        return [(value >> 16) & 0xFF, (value >> 8) & 0xFF, value & 0xFF]
    return [int(c) for c in [*color, 0, 0, 0][:3]]
