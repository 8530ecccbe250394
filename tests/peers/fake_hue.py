"""A Philips Hue bridge on loopback, speaking its v2 API (CLIP) over HTTPS (there is no v2 emulator).

What it serves, as a bridge with firmware 1.6x does (enough for aiohue 4.7, Home Assistant's):

- `GET /api/config` without a key: `bridgeid`, `swversion`, `apiversion` (1.6x: v2 API),
  `name`, `mac`, `modelid`; `POST /api` `{"devicetype": ...}` makes the application key,
  answering as a bridge whose link button was just pressed. aiohue asks these over plain
  HTTP on port 80 and everything else over HTTPS on 443: `plain_port=80, port=443` on a
  loopback address of its own (as root) lets Home Assistant's config flow find it.
- The bridge itself: a `bridge` resource (bridge_id, time_zone) on a `device` (BSB002).
- `GET /eventstream/clip/v2` (server-sent events, the key in `hue-application-key`): `: hi`
  on connect, then every change as `id: ...` and `data: [{"creationtime", "id", "type":
  "update", "data": [{"id", "id_v1", "type": "light", "owner", "on", "dimming",
  "color": {"xy"} ...}]}]` (only what changed), as the bridge pushes it.
- `POST /clip/v2/resource/{type}` creates a resource (aiohue's keep-alive makes a
  `geofence_client` a minute after connecting) and sends an `add` event.

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

Every PUT is kept in `commands` (time.monotonic(), type, id, body, HTTP status, and
`arrived`: time.perf_counter() when the request arrived).
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import json
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
from starlette.types import Receive, Scope, Send

from tests.peers.http_fake import FakeDevice, arrived, json_body

APP_KEY = "lamplighter-test-app-key-0123456789abcdef"
BRIDGE_ID = "001788fffe4a1b2c"  # as the v2 `bridge` resource gives it; /api/config drops the "fffe"
EVENTSTREAM = "/eventstream/clip/v2"
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
    arrived: float = 0.0  # time.perf_counter() on arrival


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
    def __init__(self, certificate: tuple[Path, Path], *, host: str = "127.0.0.1", port: int | None = None,
                 plain_port: int | None = None) -> None:
        super().__init__(Starlette(routes=[
            Route("/api/config", self._config, methods=["GET"]),
            Route("/api", self._create_user, methods=["POST"]),
            Route("/clip/v2/resource", self._get_all, methods=["GET"]),
            Route("/clip/v2/resource/{rtype}", self._get_type, methods=["GET"]),
            Route("/clip/v2/resource/{rtype}", self._post, methods=["POST"]),
            Route("/clip/v2/resource/{rtype}/{rid}", self._get_one, methods=["GET"]),
            Route("/clip/v2/resource/{rtype}/{rid}", self._put, methods=["PUT"]),
        ]), certificate, host=host, port=port, plain_port=plain_port)
        self.resources: dict[str, Resource] = {}
        self.commands: list[Command] = []
        self.listeners: set[asyncio.Queue[str]] = set()  # one per connected event stream
        self._numbers = itertools.count(1)
        self._event_ids = itertools.count(1)
        home = self._add({"type": "bridge_home", "children": [], "services": []})
        self._add_group(home, 0)
        device = self._add({"type": "device", "services": [],
                            "metadata": {"name": "Hue Bridge", "archetype": "bridge_v2"},
                            "product_data": {"model_id": "BSB002", "manufacturer_name": "Signify Netherlands B.V.",
                                             "product_name": "Hue Bridge", "product_archetype": "bridge_v2",
                                             "certified": True, "software_version": "1.62.1962097030"}})
        bridge = self._add({"type": "bridge", "id_v1": "", "owner": {"rid": device["id"], "rtype": "device"},
                            "bridge_id": BRIDGE_ID, "time_zone": {"time_zone": "Europe/Amsterdam"}})
        device["services"].append({"rid": bridge["id"], "rtype": "bridge"})

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

    def set_light(self, rid: str, body: Resource) -> None:
        """Change a light as its own switch or app would (no command), announced on the event stream."""
        light = self.resources[rid]
        self._apply(light, body)
        self._announce([self._changed(light, body)])

    # ---- the API -------------------------------------------------------------------------

    async def _config(self, request: Request) -> JSONResponse:
        mac = ":".join(BRIDGE_ID[i:i + 2] for i in (0, 2, 4, 10, 12, 14))
        return JSONResponse({"name": "Hue Bridge", "datastoreversion": "163", "swversion": "1962097030",
                             "apiversion": "1.62.0", "mac": mac, "bridgeid": BRIDGE_ID.upper(),
                             "factorynew": False, "replacesbridgeid": None, "modelid": "BSB002",
                             "starterkitid": ""})

    async def _create_user(self, request: Request) -> JSONResponse:
        body = await json_body(request)
        if not isinstance(body, dict) or "devicetype" not in body:
            return JSONResponse([{"error": {"type": 5, "address": "/", "description": "invalid/missing parameters"}}])
        return JSONResponse([{"success": {"username": APP_KEY}}])

    async def _post(self, request: Request) -> JSONResponse:
        if request.headers.get("hue-application-key") != APP_KEY:
            return _error(403, "unauthorized user")
        body = await json_body(request)
        if not isinstance(body, dict):
            return _error(400, "invalid body")
        created = self._add({**body, "type": request.path_params["rtype"]})
        self._announce([created], kind="add")
        return JSONResponse({"errors": [], "data": [{"rid": created["id"], "rtype": created["type"]}]})

    async def _asgi(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == EVENTSTREAM:
            await self._eventstream(scope, receive, send)
        else:
            await super()._asgi(scope, receive, send)

    async def _eventstream(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Server-sent events until the client leaves (or the server stops)."""
        if dict(scope["headers"]).get(b"hue-application-key", b"").decode() != APP_KEY:
            await _error(403, "unauthorized user")(scope, receive, send)
            return
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]})
        await send({"type": "http.response.body", "body": b": hi\n\n", "more_body": True})
        queue: asyncio.Queue[str] = asyncio.Queue()
        self.listeners.add(queue)
        gone = asyncio.create_task(_disconnected(receive))
        try:
            while not gone.done():
                message = asyncio.create_task(queue.get())
                await asyncio.wait({message, gone}, return_when=asyncio.FIRST_COMPLETED)
                if not message.done():
                    message.cancel()
                    break
                await send({"type": "http.response.body", "body": message.result().encode(), "more_body": True})
        finally:
            self.listeners.discard(queue)
            gone.cancel()

    def _announce(self, changed: list[Resource], kind: str = "update") -> None:
        if not self.listeners:
            return
        now = datetime.now(UTC)
        event = {"creationtime": now.strftime("%Y-%m-%dT%H:%M:%SZ"), "id": str(uuid.uuid4()), "type": kind,
                 "data": changed}
        text = f"id: {int(now.timestamp())}:{next(self._event_ids)}\ndata: {json.dumps([event])}\n\n"
        for queue in self.listeners:
            queue.put_nowait(text)

    def _changed(self, light: Resource, body: Resource) -> Resource:
        """What a bridge's update event says about a light after a command: the fields that changed."""
        changed: Resource = {"id": light["id"], "id_v1": light["id_v1"], "type": "light", "owner": light["owner"]}
        if "on" in body:
            changed["on"] = light["on"]
        if "dimming" in body:
            changed["dimming"] = {"brightness": light["dimming"]["brightness"]}
        if "color" in body:
            changed["color"] = {"xy": light["color"]["xy"]}
            changed["color_temperature"] = {"mirek": None, "mirek_valid": False}
        if "color_temperature" in body:
            changed["color_temperature"] = {k: light["color_temperature"][k] for k in ("mirek", "mirek_valid")}
            changed["color"] = {"xy": light["color"]["xy"]}
        return changed

    async def _get_all(self, request: Request) -> JSONResponse:
        return self._answer(request, lambda: [self._shown(r) for r in self.resources.values()])

    async def _get_type(self, request: Request) -> JSONResponse:
        rtype = request.path_params["rtype"]
        return self._answer(request, lambda: [self._shown(r) for r in self.resources.values() if r["type"] == rtype])

    async def _get_one(self, request: Request) -> JSONResponse:
        found = self._find(request)
        return self._answer(request, lambda: [self._shown(found)] if found else None)

    async def _put(self, request: Request) -> JSONResponse:
        at = arrived(request)
        found = self._find(request)
        body = await json_body(request)
        status, answer = self._command(request, found, body)
        self.commands.append(Command(time.monotonic(), request.path_params["rtype"], request.path_params["rid"],
                                     body, status, at))
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
        lights = self._lights_of(found)
        for light in lights:
            self._apply(light, body)
        self._announce([self._changed(light, body) for light in lights])
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


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


def _error(status: int, description: str) -> JSONResponse:
    return JSONResponse({"errors": [{"description": description}], "data": []}, status_code=status)
