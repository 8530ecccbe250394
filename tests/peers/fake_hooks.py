"""HTTP receivers on loopback: a generic webhook endpoint, and IFTTT's Webhooks (maker) service.

- `FakeWebhook`: `POST` to any path answers 200 `{"ok": true}`; when a token is set, a
  request without `Authorization: Bearer TOKEN` is 401.
- `FakeIfttt`: IFTTT's trigger endpoint as documented on ifttt.com/maker_webhooks:
  `POST /trigger/{event}/with/key/{key}` with a JSON body of `value1`..`value3` answers
  200 text/html "Congratulations! You've fired the {event} event"; a wrong key is 401
  `{"errors": [{"message": "You sent an invalid key."}]}`.

Both record every request in `received` (see http_fake.Received).
"""

from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from tests.peers.http_fake import FakeDevice, Received

IFTTT_KEY = "dQw4w9WgXcQ-ifttt-test-key"


class FakeWebhook(FakeDevice):
    def __init__(self, token: str = "", certificate: tuple[Path, Path] | None = None) -> None:
        super().__init__(Starlette(routes=[Route("/{path:path}", self._post, methods=["POST"])]), certificate)
        self.token = token

    @property
    def posts(self) -> list[Received]:
        return [r for r in self.received if r.method == "POST"]

    async def _post(self, request: Request) -> Response:
        if self.token and request.headers.get("authorization") != f"Bearer {self.token}":
            return JSONResponse({"error": "bad token"}, status_code=401)
        return JSONResponse({"ok": True})


class FakeIfttt(FakeDevice):
    def __init__(self, key: str = IFTTT_KEY) -> None:
        super().__init__(Starlette(routes=[
            Route("/trigger/{event}/with/key/{key}", self._trigger, methods=["POST", "GET"])]))
        self.key = key

    @property
    def posts(self) -> list[Received]:
        return [r for r in self.received if r.method == "POST"]

    async def _trigger(self, request: Request) -> Response:
        if request.path_params["key"] != self.key:
            return JSONResponse({"errors": [{"message": "You sent an invalid key."}]}, status_code=401)
        return HTMLResponse(f"Congratulations! You've fired the {request.path_params['event']} event")
