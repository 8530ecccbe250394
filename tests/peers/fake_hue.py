"""A Philips Hue bridge on loopback, speaking its v2 API (CLIP) over HTTPS (there is no v2 emulator).

What it serves, as a bridge with firmware 1.6x does:

- `GET /clip/v2/resource`, `GET /clip/v2/resource/{type}` and `GET /clip/v2/resource/{type}/{id}`
  for light, grouped_light, device, room, zone and bridge_home, each answering
  `{"errors": [], "data": [...]}`; an unknown id is 404 with an error description.
- `PUT /clip/v2/resource/light/{id}` and `.../grouped_light/{id}`: `on`, `dimming`,
  `color.xy` (clamped into the light's gamut, as a bridge does; the light leaves
  colour-temperature mode), `color_temperature.mirek` (it
  enters it; xy follows the Planckian locus), `dynamics.duration` (the transition, 400 ms
  when absent), `signaling` (`on_off_color`, `on_off`, `alternating` with a duration;
  `no_signal` stops it; the status shows while it runs). A group command reaches every
  light of its room or zone. Answer: `{"errors": [], "data": [{"rid": id, "rtype": type}]}`.
- The application key in the `hue-application-key` header, else 403 "unauthorized user".
- Rate limits: 429 past 10 commands in any second to one light, or 1 a second to one group.

Every PUT is kept in `commands` (time, type, id, body, HTTP status).
"""

from __future__ import annotations

import copy
import itertools
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.peers.http_fake import FakeDevice, json_body

APP_KEY = "lamplighter-test-app-key-0123456789abcdef"
LIMITS = {"light": 10, "grouped_light": 1}  # commands a second
SIGNALS = ["no_signal", "on_off", "on_off_color", "alternating"]
DEFAULT_TRANSITION_MS = 400
GAMUT_C = {"red": {"x": 0.6915, "y": 0.3083}, "green": {"x": 0.17, "y": 0.7}, "blue": {"x": 0.1532, "y": 0.0475}}

Resource = dict[str, Any]


@dataclass(frozen=True)
class Command:
    at: float
    rtype: str
    rid: str
    body: Resource
    status: int


def clamp_to_gamut(x: float, y: float, gamut: dict[str, dict[str, float]]) -> dict[str, float]:
    """The point a bridge stores for a requested xy: itself inside the light's gamut, else the nearest edge point."""
    corners = [(gamut[c]["x"], gamut[c]["y"]) for c in ("red", "green", "blue")]
    edges = list(zip(corners, corners[1:] + corners[:1], strict=True))
    if all(_cross(a, b, (x, y)) >= 0 for a, b in edges) or all(_cross(a, b, (x, y)) <= 0 for a, b in edges):
        return {"x": round(x, 4), "y": round(y, 4)}
    nearest = min((_nearest_on(a, b, (x, y)) for a, b in edges), key=lambda p: (p[0] - x) ** 2 + (p[1] - y) ** 2)
    return {"x": round(nearest[0], 4), "y": round(nearest[1], 4)}


def _cross(a: tuple[float, float], b: tuple[float, float], p: tuple[float, float]) -> float:
    return (b[0] - a[0]) * (p[1] - a[1]) - (b[1] - a[1]) * (p[0] - a[0])


def _nearest_on(a: tuple[float, float], b: tuple[float, float], p: tuple[float, float]) -> tuple[float, float]:
    dx, dy = b[0] - a[0], b[1] - a[1]
    t = min(max(((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / (dx * dx + dy * dy), 0.0), 1.0)
    return a[0] + t * dx, a[1] + t * dy


def mirek_xy(mirek: int) -> dict[str, float]:
    """Where a colour temperature lies in CIE xy (Kim et al.'s Planckian-locus fit), as a bridge reports it."""
    t = 1_000_000 / mirek
    if t <= 4000:
        x = -0.2661239e9 / t**3 - 0.2343589e6 / t**2 + 0.8776956e3 / t + 0.179910
    else:
        x = -3.0258469e9 / t**3 + 2.1070379e6 / t**2 + 0.2226347e3 / t + 0.240390
    if t <= 2222:
        y = -1.1063814 * x**3 - 1.34811020 * x**2 + 2.18555832 * x - 0.20219683
    elif t <= 4000:
        y = -0.9549476 * x**3 - 1.37418593 * x**2 + 2.09137015 * x - 0.16748867
    else:
        y = 3.0817580 * x**3 - 5.87338670 * x**2 + 3.75112997 * x - 0.37001483
    return {"x": round(x, 4), "y": round(y, 4)}


class FakeHueBridge(FakeDevice):
    def __init__(self, certificate: tuple[Path, Path]) -> None:
        super().__init__(Starlette(routes=[
            Route("/clip/v2/resource", self._get_all, methods=["GET"]),
            Route("/clip/v2/resource/{rtype}", self._get_type, methods=["GET"]),
            Route("/clip/v2/resource/{rtype}/{rid}", self._get_one, methods=["GET"]),
            Route("/clip/v2/resource/{rtype}/{rid}", self._put, methods=["PUT"]),
        ]), certificate)
        self.resources: dict[str, Resource] = {}
        self.commands: list[Command] = []
        self._numbers = itertools.count(1)
        home = self._add({"type": "bridge_home", "children": [], "services": []})
        self._add_group(home, 0)

    # ---- building the home ---------------------------------------------------------------

    def add_light(self, name: str, *, on: bool = True, brightness: float = 100.0, xy: tuple[float, float] | None = None,
                  mirek: int | None = None, signals: list[str] | None = None) -> str:
        """A colour light (gamut C) on its own device; colour-temperature mode when `mirek` is given."""
        number = next(self._numbers)
        device = self._add({"type": "device", "id_v1": f"/lights/{number}", "services": [],
                            "metadata": {"name": name, "archetype": "sultan_bulb"},
                            "product_data": {"model_id": "LCA001", "manufacturer_name": "Signify Netherlands B.V.",
                                             "product_name": "Hue color lamp", "product_archetype": "sultan_bulb",
                                             "certified": True, "software_version": "1.116.3"}})
        light = self._add({
            "type": "light", "id_v1": f"/lights/{number}", "owner": {"rid": device["id"], "rtype": "device"},
            "metadata": {"name": name, "archetype": "sultan_bulb", "function": "mixed"}, "identify": {},
            "service_id": 0, "mode": "normal", "on": {"on": on},
            "dimming": {"brightness": brightness, "min_dim_level": 0.2}, "dimming_delta": {},
            "color_temperature": {"mirek": None, "mirek_valid": False,
                                  "mirek_schema": {"mirek_minimum": 153, "mirek_maximum": 500}},
            "color_temperature_delta": {},
            "color": {"xy": {"x": 0.3127, "y": 0.329}, "gamut": GAMUT_C, "gamut_type": "C"},
            "dynamics": {"status": "none", "status_values": ["none", "dynamic_palette"], "speed": 0.0,
                         "speed_valid": False},
            "alert": {"action_values": ["breathe"]},
            "signaling": {"signal_values": SIGNALS if signals is None else signals},
            "effects": {"status": "no_effect", "status_values": ["no_effect", "candle", "fire"],
                        "effect_values": ["no_effect", "candle", "fire"]}})
        device["services"].append({"rid": light["id"], "rtype": "light"})
        if mirek is not None:
            self._set_mirek(light, mirek)
        elif xy is not None:
            light["color"]["xy"] = {"x": xy[0], "y": xy[1]}
        return str(light["id"])

    def add_room(self, name: str, lights: list[str]) -> str:
        """A room of the given lights' devices, with its grouped light; returns the group's v1 number."""
        children = [self.resources[light]["owner"] for light in lights]
        room = self._add({"type": "room", "children": children, "services": [],
                          "metadata": {"name": name, "archetype": "living_room"}})
        number = len([r for r in self.resources.values() if r["type"] == "grouped_light"])
        self._add_group(room, number)
        return str(number)

    def light(self, rid: str) -> Resource:
        return self.resources[rid]

    def light_commands(self, rid: str) -> list[Command]:
        return [c for c in self.commands if c.rid == rid and c.status == 200]

    # ---- the API -------------------------------------------------------------------------

    async def _get_all(self, request: Request) -> JSONResponse:
        return self._answer(request, lambda: [self._shown(r) for r in self.resources.values()])

    async def _get_type(self, request: Request) -> JSONResponse:
        rtype = request.path_params["rtype"]
        return self._answer(request, lambda: [self._shown(r) for r in self.resources.values() if r["type"] == rtype])

    async def _get_one(self, request: Request) -> JSONResponse:
        found = self._find(request)
        return self._answer(request, lambda: [self._shown(found)] if found else None)

    async def _put(self, request: Request) -> JSONResponse:
        found = self._find(request)
        body = await json_body(request)
        status, answer = self._command(request, found, body)
        self.commands.append(Command(time.monotonic(), request.path_params["rtype"], request.path_params["rid"],
                                     body, status))
        return answer

    def _command(self, request: Request, found: Resource | None, body: Any) -> tuple[int, JSONResponse]:
        if request.headers.get("hue-application-key") != APP_KEY:
            return 403, _error(403, "unauthorized user")
        if found is None or found["type"] not in LIMITS:
            return 404, _error(404, "Not Found")
        if not isinstance(body, dict):
            return 400, _error(400, "invalid body")
        if self._too_many(found):
            return 429, _error(429, "Too many requests")
        for light in self._lights_of(found):
            self._apply(light, body)
        return 200, JSONResponse({"errors": [], "data": [{"rid": found["id"], "rtype": found["type"]}]})

    def _answer(self, request: Request, data: Any) -> JSONResponse:
        if request.headers.get("hue-application-key") != APP_KEY:
            return _error(403, "unauthorized user")
        shown = data()
        return _error(404, "Not Found") if shown is None else JSONResponse({"errors": [], "data": shown})

    def _too_many(self, target: Resource) -> bool:
        now = time.monotonic()
        recent = [c for c in self.commands if c.rid == target["id"] and c.status == 200 and now - c.at < 1.0]
        return len(recent) >= LIMITS[target["type"]]

    def _apply(self, light: Resource, body: Resource) -> None:
        if "on" in body:
            light["on"]["on"] = bool(body["on"]["on"])
        if "dimming" in body:
            light["dimming"]["brightness"] = min(max(float(body["dimming"]["brightness"]), 0.2), 100.0)
        if "color" in body and "xy" in body["color"]:
            xy = body["color"]["xy"]
            light["color"]["xy"] = clamp_to_gamut(float(xy["x"]), float(xy["y"]), light["color"]["gamut"])
            light["color_temperature"].update(mirek=None, mirek_valid=False)
        if "color_temperature" in body:
            self._set_mirek(light, int(body["color_temperature"]["mirek"]))
        light["last_transition_ms"] = body.get("dynamics", {}).get("duration", DEFAULT_TRANSITION_MS)
        if "signaling" in body:
            self._signal(light, body["signaling"])

    def _signal(self, light: Resource, signaling: Resource) -> None:
        light["signaling"].pop("status", None)
        if signaling["signal"] != "no_signal":
            end = datetime.now(UTC) + timedelta(milliseconds=signaling.get("duration", 0))
            light["signaling"]["status"] = {"signal": signaling["signal"], "estimated_end": end.isoformat(),
                                            "colors": signaling.get("colors", [])}

    def _set_mirek(self, light: Resource, mirek: int) -> None:
        light["color_temperature"].update(mirek=mirek, mirek_valid=True)
        light["color"]["xy"] = mirek_xy(mirek)

    def _lights_of(self, target: Resource) -> list[Resource]:
        if target["type"] == "light":
            return [target]
        owner = self.resources[target["owner"]["rid"]]
        if owner["type"] == "bridge_home":
            return [r for r in self.resources.values() if r["type"] == "light"]
        devices = [self.resources[c["rid"]] for c in owner["children"]]
        return [self.resources[s["rid"]] for d in devices for s in d["services"] if s["rtype"] == "light"]

    def _shown(self, resource: Resource) -> Resource:
        """A resource as the API reports it (a grouped light summarises its lights)."""
        shown = {k: v for k, v in copy.deepcopy(resource).items() if k != "last_transition_ms"}
        if resource["type"] == "grouped_light":
            lights = self._lights_of(resource)
            lit = [light for light in lights if light["on"]["on"]]
            shown["on"] = {"on": bool(lit)}
            shown["dimming"] = {"brightness": sum(light["dimming"]["brightness"] for light in lit) / len(lit)
                                if lit else 0.0}
        return shown

    def _find(self, request: Request) -> Resource | None:
        found = self.resources.get(request.path_params["rid"])
        return found if found is not None and found["type"] == request.path_params["rtype"] else None

    def _add(self, resource: Resource) -> Resource:
        resource["id"] = str(uuid.uuid4())
        self.resources[resource["id"]] = resource
        return resource

    def _add_group(self, owner: Resource, number: int) -> None:
        group = self._add({"type": "grouped_light", "id_v1": f"/groups/{number}",
                           "owner": {"rid": owner["id"], "rtype": owner["type"]}, "on": {"on": False},
                           "dimming": {"brightness": 0.0}, "dimming_delta": {}, "color": {}, "color_temperature": {},
                           "dynamics": {}, "alert": {"action_values": ["breathe"]},
                           "signaling": {"signal_values": SIGNALS}})
        owner["services"].append({"rid": group["id"], "rtype": "grouped_light"})


def _error(status: int, description: str) -> JSONResponse:
    return JSONResponse({"errors": [{"description": description}], "data": []}, status_code=status)
