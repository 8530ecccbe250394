"""A service and its HTTP app served by uvicorn on a free loopback port, inside the test's event loop."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import uvicorn

from lamplighter.service import Service
from lamplighter.web.app import create_app
from tests.daemon import free_port


@contextlib.asynccontextmanager
async def serving(service: Service, token: str) -> AsyncIterator[str]:
    """Start the service and serve its app for the block; yields the base URL; stops both after."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(service, token), host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="off"))
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
