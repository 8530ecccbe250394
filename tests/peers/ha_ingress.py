"""A wire-faithful stand-in for Home Assistant's ingress proxy, on loopback, in a thread of its own.

What Home Assistant 2024.3 does for an app's web UI (homeassistant/components/hassio/ingress.py):
`/api/hassio_ingress/TOKEN/PATH` is forwarded to the app as `/PATH` with the query, the request's
headers but Content-Length, Content-Encoding, Transfer-Encoding, Accept-Encoding and the
websocket ones (so Host and Origin pass through), plus `X-Hass-Source: core.ingress`,
`X-Ingress-Path: /api/hassio_ingress/TOKEN`, `X-Forwarded-For/-Host/-Proto`; redirects are not
followed; the answer comes back with the app's headers but Transfer-Encoding, Content-Length,
Content-Type and Content-Encoding, whole when it has a Content-Length, else streamed. Home
Assistant shows the app in a frame of its own page: `/` here is such a page. Text answers are
compressed as Home Assistant compresses them (event streams not, since January 2026).

    with IngressProxy(daemon.url).start() as proxy:
        page.goto(proxy.url)            # the frame shows f"{proxy.url}{proxy.prefix}/dashboard"
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from types import TracebackType
from typing import Any, Self

import aiohttp
from aiohttp import hdrs, web

from tests.daemon import free_port

REQUEST_HEADERS_DROPPED = {hdrs.CONTENT_LENGTH, hdrs.CONTENT_ENCODING, hdrs.TRANSFER_ENCODING, hdrs.ACCEPT_ENCODING,
                           hdrs.SEC_WEBSOCKET_EXTENSIONS, hdrs.SEC_WEBSOCKET_PROTOCOL, hdrs.SEC_WEBSOCKET_VERSION,
                           hdrs.SEC_WEBSOCKET_KEY}
RESPONSE_HEADERS_DROPPED = {hdrs.TRANSFER_ENCODING, hdrs.CONTENT_LENGTH, hdrs.CONTENT_TYPE, hdrs.CONTENT_ENCODING}
PANEL = """<!doctype html><title>Home Assistant</title>
<iframe title="Lamplighter" src="{src}" style="width: 100%; height: 90vh; border: 0"></iframe>"""


def should_compress(content_type: str) -> bool:
    """Home Assistant's choice (components/hassio/http.py): text, JSON, XML, JavaScript and SVG, but not
    server-sent events since home-assistant/core#160704 (January 2026; before, a compressed event stream
    stalled in the compressor and a live view never got its first event)."""
    if content_type == "text/event-stream":
        return False
    if content_type.startswith("image/"):
        return "svg" in content_type
    if content_type.startswith("application/"):
        return "json" in content_type or "xml" in content_type or "javascript" in content_type
    return not content_type.startswith(("video/", "audio/", "font/"))


class IngressProxy:
    """Home Assistant's ingress in front of the app at `target` (http://HOST:PORT)."""

    def __init__(self, target: str, token: str = "ingress-token-4f2a", start_path: str = "/dashboard") -> None:
        self.target = target
        self.prefix = f"/api/hassio_ingress/{token}"
        self.start_path = start_path
        self.port = free_port()
        self.seen: list[str] = []  # every path asked of the proxy
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="ingress proxy", daemon=True)
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._forwarding: set[asyncio.Task[Any]] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Self:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=10)
        return self

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    async def _start(self) -> None:
        self._session = aiohttp.ClientSession(auto_decompress=False)
        app = web.Application()
        app.router.add_get("/", self._panel)
        app.router.add_route("*", self.prefix + "/{path:.*}", self._forward)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def _stop(self) -> None:
        for task in self._forwarding:  # the streams still open (a page's live view)
            task.cancel()
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _panel(self, request: web.Request) -> web.Response:
        self.seen.append(request.path)
        return web.Response(text=PANEL.format(src=self.prefix + self.start_path), content_type="text/html")

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        self.seen.append(request.path)
        task = asyncio.current_task()
        assert task is not None
        self._forwarding.add(task)
        try:
            return await self._answer(request)
        finally:
            self._forwarding.discard(task)

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        assert self._session is not None and request.transport is not None
        headers = {name: value for name, value in request.headers.items() if name not in REQUEST_HEADERS_DROPPED}
        headers["X-Hass-Source"] = "core.ingress"
        headers["X-Ingress-Path"] = self.prefix
        headers[hdrs.X_FORWARDED_FOR] = request.transport.get_extra_info("peername")[0]
        headers[hdrs.X_FORWARDED_HOST] = request.host
        headers[hdrs.X_FORWARDED_PROTO] = request.scheme
        async with self._session.request(
                request.method, f"{self.target}/{request.match_info['path']}", headers=headers,
                params=request.query, allow_redirects=False,
                data=request.content if request.method != "GET" else None,
                timeout=aiohttp.ClientTimeout(total=None), skip_auto_headers={hdrs.CONTENT_TYPE}) as result:
            answer_headers = {name: value for name, value in result.headers.items()
                              if name not in RESPONSE_HEADERS_DROPPED}
            if result.status in (204, 304) or hdrs.CONTENT_LENGTH in result.headers:
                simple = web.Response(headers=answer_headers, status=result.status, body=await result.read(),
                                      content_type=result.headers.get(hdrs.CONTENT_TYPE, "").partition(";")[0].strip()
                                      or result.content_type)
                if int(result.headers.get(hdrs.CONTENT_LENGTH) or 0) > 128 and should_compress(simple.content_type):
                    simple.enable_compression()
                return simple
            response = web.StreamResponse(status=result.status, headers=answer_headers)
            response.content_type = result.content_type
            if should_compress(response.content_type):
                response.enable_compression()
            await response.prepare(request)
            with contextlib.suppress(aiohttp.ClientError, ConnectionResetError):  # as Home Assistant does
                async for data, _ in result.content.iter_chunks():
                    await response.write(data)
            return response
