"""A service and its HTTP app served by uvicorn as the daemon serves it (limits included), on a free
loopback port, inside the test's event loop."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Iterator

import uvicorn

from lamplighter.service import Service
from lamplighter.web.app import create_app
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


@contextlib.contextmanager
def serving_in_thread(service: Service, token: str) -> Iterator[tuple[str, asyncio.AbstractEventLoop]]:
    """`serving` on an event loop of its own in a thread, for tests that drive a browser from this one;
    yields the base URL and that loop (hand it work with `loop.call_soon_threadsafe`)."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(service, token), host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="off"))

    async def serve() -> None:
        async with service.running():
            await server.serve()

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    while not server.started:
        assert thread.is_alive(), "the in-process server did not start"
        threading.Event().wait(0.01)
    try:
        yield f"http://127.0.0.1:{port}", loop
    finally:
        loop.call_soon_threadsafe(service.end_watches)
        server.should_exit = True
        thread.join(timeout=10)
        if not thread.is_alive():
            loop.close()
