"""Run the service and its HTTP face in one process until SIGTERM or Ctrl-C."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import uvicorn

from lamplighter.service import Service
from lamplighter.web.app import create_app

GRACEFUL_SHUTDOWN_SECONDS = 2


class _Server(uvicorn.Server):
    """uvicorn re-raises the stop signal after its graceful shutdown (exit status -15);
    a daemon that stopped cleanly because it was asked to exits 0 instead."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        with super().capture_signals():
            yield
            self._captured_signals.clear()


async def serve(service: Service, token: str) -> None:
    """Start the lamp controllers, serve HTTP, and stop both cleanly on a signal."""
    server_config = service.config.server
    app = create_app(service, token)
    server = _Server(uvicorn.Config(
        app, host=server_config.host, port=server_config.port, log_level="warning", access_log=False,
        lifespan="off", timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS, server_header=False,
    ))
    async with service.running():
        await server.serve()  # logs and exits 1 if the address is taken
