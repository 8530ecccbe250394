"""A JSON notification endpoint on loopback (what Apprise's `json://` posts to), recording every post.

    async with notification_receiver() as receiver:
        url = f"json://127.0.0.1:{receiver.port}/lamp"     # an Apprise URL for announce: or fallback:
        ...; receiver.received  -> [{"path", "auth", "title", "message", ...}]
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from tests.daemon import free_port


class Receiver:
    """Records each POST's path, Authorization header and JSON body; answers `status`."""

    def __init__(self) -> None:
        self.port = free_port()
        self.received: list[dict[str, Any]] = []
        self.status = 200

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append({"path": request.path, "auth": request.headers.get("Authorization"),
                              **await request.json()})
        return web.json_response({}, status=self.status)


@contextlib.asynccontextmanager
async def notification_receiver() -> AsyncIterator[Receiver]:
    found = Receiver()
    app = web.Application()
    app.router.add_post("/{path:.*}", found.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", found.port).start()
    try:
        yield found
    finally:
        await runner.cleanup()
