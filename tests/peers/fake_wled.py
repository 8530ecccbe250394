"""A WLED strip on loopback, speaking its JSON API as WLED 0.14 does (there is no WLED emulator).

- `GET /json/state`: the whole state (`on`, `bri`, `transition`, `mainseg`, `seg` with
  `col` as up to three [r, g, b] colours, `fx`, `sx`, `ix`, `pal`, `on`, `bri`, `frz` ...);
  `GET /json/info`; `GET /json` gives both plus effect and palette names.
- `POST /json/state`: a partial state merged into the current one. `on` may be `"t"`
  (toggle); `seg` is a list whose objects name their segment by `id` (else by position)
  or one object for every selected segment; a colour is [r, g, b(, w)] or "RRGGBB";
  `tt` is the transition of this change only (in 100 ms units), `transition` the lasting
  default (7 = 700 ms, WLED's default). With `"v": true` the answer is the new state,
  else `{"success": true}`. Invalid JSON: 400 `{"error": 9}`.
- One request at a time, as the ESP does: the fake records how many were ever in flight
  at once (`most_in_flight`).

Every accepted change is kept in `changes` as (time, transition in ms, state after).
"""

from __future__ import annotations

import copy
import time
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.peers.http_fake import FakeDevice, json_body

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
    def __init__(self, leds: int = 30) -> None:
        super().__init__(Starlette(routes=[
            Route("/json", self._all, methods=["GET"]),
            Route("/json/info", self._info, methods=["GET"]),
            Route("/json/state", self._get_state, methods=["GET"]),
            Route("/json/state", self._post_state, methods=["POST"]),
        ]))
        self.leds = leds
        self.state: dict[str, Any] = {
            "on": True, "bri": 128, "transition": 7, "ps": -1, "pl": -1, "lor": 0, "mainseg": 0,
            "nl": {"on": False, "dur": 60, "mode": 1, "tbri": 0, "rem": -1}, "udpn": {"send": False, "recv": True},
            "seg": [segment(0, 0, leds, [255, 160, 0])]}
        self.changes: list[tuple[float, int, dict[str, Any]]] = []

    @property
    def posts(self) -> list[float]:
        """Arrival times of the POSTs (the commands)."""
        return [r.at for r in self.received if r.method == "POST"]

    def color(self, seg_id: int = 0) -> list[int]:
        return list(self._segment(seg_id)["col"][0][:3])

    async def _all(self, request: Request) -> JSONResponse:
        return JSONResponse({"state": self.state, "info": self._info_body(), "effects": EFFECT_NAMES,
                             "palettes": ["Default"]})

    async def _info(self, request: Request) -> JSONResponse:
        return JSONResponse(self._info_body())

    async def _get_state(self, request: Request) -> JSONResponse:
        return JSONResponse(self.state)

    async def _post_state(self, request: Request) -> JSONResponse:
        try:
            change = await json_body(request)
        except ValueError:
            return JSONResponse({"error": 9}, status_code=400)
        if not isinstance(change, dict):
            return JSONResponse({"error": 9}, status_code=400)
        self._merge(change)
        transition = change.get("tt", self.state["transition"]) * 100
        self.changes.append((time.monotonic(), transition, copy.deepcopy(self.state)))
        return JSONResponse(self.state if change.get("v") else {"success": True})

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
        return {"ver": "0.14.4", "vid": 2405180, "leds": {"count": self.leds, "rgbw": False, "cct": False, "fps": 42,
                                                          "maxseg": 32}, "name": "WLED", "brand": "WLED",
                "product": "FOSS", "arch": "esp32", "mac": "a8032a123456"}


def _rgb(color: list[int] | str) -> list[int]:
    """A colour as WLED stores it: [r, g, b]; a 4th (white) value is dropped by this RGB strip."""
    if isinstance(color, str):
        value = int(color, 16)
        return [(value >> 16) & 0xFF, (value >> 8) & 0xFF, value & 0xFF]
    return [int(c) for c in [*color, 0, 0, 0][:3]]
