"""What one client can hold of the HTTP server: body size, time, and connections.

- `BodySizeLimit` (ASGI middleware) refuses a request body over a size limit with 413 before
  any handler runs, and ends a request quietly when its client goes away mid-body.
- `guarded_protocol` gives uvicorn an HTTP protocol with a deadline for a request's headers
  (from the connection's start, or the end of the previous response on a kept-alive one) and
  for its body (from the end of its headers), and a cap on open connections: past the cap the
  connection that has waited longest without sending a request is closed to make room. Each
  limit is logged once when first hit, not once per connection.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Any, ClassVar

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger(__name__)


class BodyTooLarge(Exception):
    pass


class BodySizeLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send)
            return
        seen = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await self._refuse(send)
        except ClientDisconnect:
            pass  # the client left (or was cut off by the body timeout): nobody is there to answer

    async def _refuse(self, send: Send) -> None:
        body: dict[str, Any] = {"error": f"request body is larger than {self.max_bytes} bytes"}
        data = json.dumps(body).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]})
        await send({"type": "http.response.body", "body": data})


@dataclass(frozen=True)
class ConnectionLimits:
    header_timeout: float  # seconds to send a request's line and headers
    body_timeout: float  # seconds to send its body, once the headers are in
    max_connections: int


class _GuardedHttp(HttpToolsProtocol):
    """uvicorn's httptools protocol with the deadlines and the connection cap of `limits`."""

    limits: ClassVar[ConnectionLimits]
    warned: ClassVar[set[str]]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self.waiting_since: float | None = None  # set while no request is under way: evictable

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._await_request()
        if len(self.connections) > self.limits.max_connections:
            self._make_room()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        self.waiting_since = None
        self._arm(self.limits.body_timeout, f"send a request body within {self.limits.body_timeout:g} s")

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._disarm()  # the request is ours now: a long answer (a lamp's event stream) has no deadline

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self.cycle.response_complete:  # not a pipelined request
            self._await_request()

    def _await_request(self) -> None:
        self.waiting_since = self.loop.time()
        self._arm(self.limits.header_timeout, f"send a request's headers within {self.limits.header_timeout:g} s")

    def _arm(self, seconds: float, broken_promise: str) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._expire, broken_promise)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self, broken_promise: str) -> None:
        self._warn_once(f"closing HTTP connections that do not {broken_promise} (a slow or hostile client)")
        self.transport.close()

    def _make_room(self) -> None:
        idle = [c for c in self.connections if isinstance(c, _GuardedHttp) and c is not self
                and c.waiting_since is not None]
        oldest = min(idle, key=lambda c: c.waiting_since or 0.0, default=self)
        self._warn_once(f"more than {self.limits.max_connections} HTTP connections: closing the one that has "
                        "waited longest without sending a request (the new one if every one has a request under way)")
        oldest.transport.close()

    def _warn_once(self, message: str) -> None:
        if message not in self.warned:
            self.warned.add(message)
            log.warning(message)


def guarded_protocol(limits: ConnectionLimits) -> type[asyncio.Protocol]:
    """An HTTP protocol class for uvicorn's `http=` that enforces `limits`."""
    return type("GuardedHttp", (_GuardedHttp,), {"limits": limits, "warned": set()})
