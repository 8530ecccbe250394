"""The common part of the HTTP device fakes (WLED, Hue bridge, webhook receiver): a real server, a plug.

A fake is a Starlette app served by uvicorn on a free loopback port, in the test's own
event loop, optionally over TLS. `unplug()` makes it behave like a device that dropped
off the network: requests are accepted by the kernel but never answered (the client
times out); they are not processed when it comes back (`plug()`), they fail with 503,
because a real device never executes a command it did not receive. Every request is
recorded with its arrival time (`at`, time.monotonic(); `arrived`, time.perf_counter(),
the clock a benchmark times its events with). Websocket connections go to the app as
they are (not recorded: the app keeps what it needs).

A fake may listen on another loopback address and a fixed port (`host`, `port`), for a
client that cannot be given a port: python-wled always talks to port 80, aiohue to 443.

    async with FakeWled() as wled:
        url = f"wled://127.0.0.1:{wled.port}"
        wled.unplug(); ...; wled.plug()
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import uvicorn
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from tests.daemon import free_port

READY_TIMEOUT = 10.0
ARRIVED = "fake.arrived"  # the request scope's key for its arrival time (perf_counter)


@dataclass(frozen=True)
class Received:
    """One request as the device saw it."""

    at: float  # time.monotonic() on arrival
    arrived: float  # time.perf_counter() on arrival, before the body is read
    method: str
    path: str
    headers: dict[str, str]
    body: Any  # parsed JSON, or None


def most_in_any_window(times: list[float], window: float = 1.0) -> int:
    """The largest number of `times` that fall within any `window` seconds: what a rate limit counts."""
    ordered = sorted(times)
    start, most = 0, 0
    for end, at in enumerate(ordered):
        while at - ordered[start] >= window:
            start += 1
        most = max(most, end - start + 1)
    return most


def arrived(request: Request) -> float:
    """When the request arrived, by time.perf_counter()."""
    return float(request.scope.get(ARRIVED, time.perf_counter()))


async def json_body(request: Request) -> Any:
    """The request's JSON body, None when it has none."""
    raw = await request.body()
    return json.loads(raw) if raw else None


class FakeDevice:
    """A fake HTTP device serving `app`; subclasses keep the device's state."""

    def __init__(self, app: ASGIApp, certificate: tuple[Path, Path] | None = None, *, host: str = "127.0.0.1",
                 port: int | None = None, plain_port: int | None = None) -> None:
        self.app = app
        self.host = host
        self.port = port or free_port()
        self.plain_port = plain_port  # also plain HTTP here (a Hue bridge: /api/config on 80, HTTPS on 443)
        self.received: list[Received] = []
        self.in_flight = 0
        self.most_in_flight = 0
        self._certificate = certificate
        self._online = asyncio.Event()
        self._online.set()
        self._servers: list[tuple[uvicorn.Server, asyncio.Task[None]]] = []

    @property
    def base_url(self) -> str:
        return f"{'https' if self._certificate else 'http'}://{self.host}:{self.port}"

    def unplug(self) -> None:
        """Stop answering: requests hang, as to a device that left the network."""
        self._online.clear()

    def plug(self) -> None:
        self._online.set()

    async def __aenter__(self) -> FakeDevice:
        await self._serve(self.port, self._certificate)
        if self.plain_port is not None:
            await self._serve(self.plain_port, None)
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        trace: TracebackType | None) -> None:
        self.plug()
        for server, _ in self._servers:
            server.should_exit = True
        for _, task in self._servers:
            await task

    async def _serve(self, port: int, certificate: tuple[Path, Path] | None) -> None:
        cert, key = certificate or (None, None)
        config = uvicorn.Config(self._asgi, host=self.host, port=port, log_level="warning", lifespan="off",
                                interface="asgi3", ssl_certfile=str(cert) if cert else None,
                                ssl_keyfile=str(key) if key else None, timeout_graceful_shutdown=1)
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve())
        self._servers.append((server, task))
        deadline = time.monotonic() + READY_TIMEOUT
        while not server.started:
            if task.done() or time.monotonic() > deadline:
                raise RuntimeError(f"{type(self).__name__} did not start on {self.host}:{port}")
            await asyncio.sleep(0.01)

    async def _asgi(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await self.app(scope, receive, send)
            return
        if scope["type"] != "http":
            return
        if not self._online.is_set():
            await self._online.wait()  # the client has long given up; drop the request unprocessed
            await Response("was unreachable", status_code=503)(scope, receive, send)
            return
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await self._record_and_serve(scope, receive, send)
        finally:
            self.in_flight -= 1

    async def _record_and_serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        arrived = time.perf_counter()
        request = Request(scope, receive)
        try:
            body = await json_body(request)
        except ValueError:
            await JSONResponse({"error": "malformed JSON"}, status_code=400)(scope, receive, send)
            return
        self.received.append(Received(time.monotonic(), arrived, request.method, request.url.path,
                                      dict(request.headers), body))
        scope[ARRIVED] = arrived
        await self.app(scope, _replay(await request.body()), send)


def _replay(body: bytes) -> Receive:
    """A `receive` that hands the already-read body to the app again."""
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.Event().wait()  # nothing more: the app waits for a disconnect that never matters
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive
