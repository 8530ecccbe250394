"""A real Home Assistant 2024.3.3 on loopback, with the demo integration's lights and sirens.

HA lives in a virtualenv of its own (`scripts/ensure-hass-venv`, which `make test` runs);
a test that needs it fails, naming the script, when it is missing. The very first start
of a new venv installs the demo integration's requirements from PyPI (about 19 packages,
15 s here); later starts answer in about 1.5 s.

    with HomeAssistant(tmp_path / "hass").start() as ha:
        url = ha.lamp_url("light.bed_light")                    # hass://TOKEN@127.0.0.1:PORT/light.bed_light
        ha.call("light", "turn_on", entity_id="light.bed_light", color_temp_kelvin=2700)
        ha.state("light.bed_light")["attributes"]["color_mode"]  # "color_temp"
        async with ha.events("call_service") as seen: ...        # HA's own event bus, over its websocket
        ha.stop(); ha.start()                                    # the same port, config and token

A fresh config directory gets its owner the way the first visit to HA's page does (the
onboarding API), then a long-lived access token over the websocket, as the profile page
makes one: the token a user would put in `${HASS_TOKEN}`.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import aiohttp
import httpx

from tests.daemon import free_port
from tests.peers.process import PeerProcess, http_ok

REPO = Path(__file__).resolve().parents[2]
VENV = REPO / ".cache" / "peers" / "hass-venv"
ENSURE_SCRIPT = "scripts/ensure-hass-venv"
START_TIMEOUT = 300.0  # the first start of a new venv installs packages from PyPI
DEMO_ENTITIES = ("light.bed_light", "light.ceiling_lights", "siren.siren", "siren.siren_with_all_features")
USER, PASSWORD = "lamplighter", "lamplighter-test-password"
CONFIGURATION = """\
homeassistant:
  name: Lamplighter tests
  latitude: 52.37
  longitude: 4.89
  elevation: 0
  unit_system: metric
  time_zone: UTC
  country: NL
  currency: EUR
http:
  server_host: 127.0.0.1
  server_port: {port}
api:
auth:
onboarding:
websocket_api:
demo:
logger:
  default: warning
"""


@dataclass(frozen=True)
class Event:
    """One event on HA's bus: when HA fired it (epoch seconds, HA's clock) and its data."""

    fired: float
    data: dict[str, Any]


def hass_binary() -> Path:
    binary = VENV / "bin" / "hass"
    if not binary.exists():
        raise RuntimeError(f"Home Assistant is not installed at {VENV}: run {ENSURE_SCRIPT} (`make test` does)")
    return binary


@dataclass
class HomeAssistant(PeerProcess):
    workdir: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    token: str = ""  # a long-lived access token, made on the first start
    extra_config: str = ""  # more of configuration.yaml (top-level keys), e.g. `automation: !include a.yaml`
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=10))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "hass.log"

    def lamp_url(self, entity_id: str, token: str = "", **options: str) -> str:
        query = "&".join(f"{k}={v}" for k, v in options.items())
        return f"hass://{token or self.token}@127.0.0.1:{self.port}/{entity_id}{'?' + query if query else ''}"

    def start(self) -> HomeAssistant:
        """Start HA (blocking: from async code, run it in a thread) and wait for the demo entities."""
        config = self.workdir / "config"
        config.mkdir(parents=True, exist_ok=True)
        (config / "configuration.yaml").write_text(CONFIGURATION.format(port=self.port) + self.extra_config)
        self.spawn([str(hass_binary()), "--config", str(config), "--log-no-color"])
        if not self.token:
            self.wait_ready(http_ok(f"{self.url}/api/onboarding"), START_TIMEOUT)
            self.token = asyncio.run(self._long_lived_token(self._onboard()))
        self.wait_ready(self._demo_loaded, START_TIMEOUT)
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
        self.http.close()

    # ---- the test's side: HA's REST API and event bus --------------------------------------

    def state(self, entity_id: str) -> dict[str, Any]:
        """The entity as HA reports it: state, attributes, last_changed, ..."""
        answer = self.http.get(f"{self.url}/api/states/{entity_id}", headers=self._auth())
        answer.raise_for_status()
        return dict(answer.json())

    def call(self, domain: str, service: str, **data: Any) -> None:
        answer = self.http.post(f"{self.url}/api/services/{domain}/{service}", json=data, headers=self._auth())
        answer.raise_for_status()

    def set_state(self, entity_id: str, state: str) -> None:
        """Overwrite what HA reports for an entity, until its integration writes it again (`POST /api/states`)."""
        answer = self.http.post(f"{self.url}/api/states/{entity_id}", json={"state": state}, headers=self._auth())
        answer.raise_for_status()

    @contextlib.asynccontextmanager
    async def events(self, event_type: str) -> AsyncIterator[list[Event]]:
        """Every `event_type` event HA fires while inside, collected as it arrives over the websocket."""
        seen: list[Event] = []
        async with aiohttp.ClientSession() as session, session.ws_connect(f"{self.url}/api/websocket") as socket:
            await _authenticate(socket, self.token)
            await _command(socket, {"id": 1, "type": "subscribe_events", "event_type": event_type})
            collecting = asyncio.create_task(_collect(socket, seen))
            try:
                yield seen
            finally:
                collecting.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await collecting

    # ---- setting HA up ---------------------------------------------------------------------

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def _demo_loaded(self) -> bool:
        return all(self.http.get(f"{self.url}/api/states/{entity}", headers=self._auth()).status_code == 200
                   for entity in DEMO_ENTITIES)

    def _onboard(self) -> str:
        """Create the owner (what HA's first page does) and return a 30-minute access token for them."""
        client_id = f"{self.url}/"
        user = {"client_id": client_id, "name": "Lamplighter", "username": USER, "password": PASSWORD,
                "language": "en"}
        created = self.http.post(f"{self.url}/api/onboarding/users", json=user)
        created.raise_for_status()
        grant = {"grant_type": "authorization_code", "code": created.json()["auth_code"], "client_id": client_id}
        tokens = self.http.post(f"{self.url}/auth/token", data=grant)
        tokens.raise_for_status()
        return str(tokens.json()["access_token"])

    async def _long_lived_token(self, access_token: str) -> str:
        async with aiohttp.ClientSession() as session, session.ws_connect(f"{self.url}/api/websocket") as socket:
            await _authenticate(socket, access_token)
            made = await _command(socket, {"id": 1, "type": "auth/long_lived_access_token",
                                           "client_name": "lamplighter tests", "lifespan": 365})
            return str(made["result"])


async def _authenticate(socket: aiohttp.ClientWebSocketResponse, token: str) -> None:
    await socket.receive_json()  # auth_required
    await socket.send_json({"type": "auth", "access_token": token})
    answer = await socket.receive_json()
    if answer.get("type") != "auth_ok":
        raise RuntimeError(f"Home Assistant's websocket refused the token: {answer}")


async def _command(socket: aiohttp.ClientWebSocketResponse, command: dict[str, Any]) -> dict[str, Any]:
    await socket.send_json(command)
    answer: dict[str, Any] = await socket.receive_json()
    if not answer.get("success"):
        raise RuntimeError(f"Home Assistant's websocket refused {command['type']}: {answer}")
    return answer


async def _collect(socket: aiohttp.ClientWebSocketResponse, seen: list[Event]) -> None:
    async for message in socket:
        event = message.json().get("event")
        if event is not None:
            seen.append(Event(datetime.fromisoformat(event["time_fired"]).timestamp(), event["data"]))
