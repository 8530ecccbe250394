"""A service and its HTTP app served by uvicorn as the daemon serves it (limits included), on a free
loopback port, inside the test's event loop."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import uvicorn

from lamplighter.service import Service
from lamplighter.web.server import uvicorn_config
from tests.daemon import free_port


@contextlib.asynccontextmanager
async def serving(service: Service, token: str) -> AsyncIterator[str]:
    """Start the service and serve its app for the block; yields the base URL; stops both after."""
    port = free_port()
    config = uvicorn_config(service, token)
    config.host, config.port = "127.0.0.1", port
    server = uvicorn.Server(config)
    async with service.running():
        task = asyncio.create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.01)
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            service.end_watches()  # open event streams end now, not at uvicorn's grace timeout
            server.should_exit = True
            await task
