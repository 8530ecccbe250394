"""Run the service and its HTTP face in one process until SIGTERM or Ctrl-C.

A stop is bounded: open lamp streams end at once, requests get GRACEFUL_SHUTDOWN_SECONDS,
the service bounds its own tasks, and should anything still hold the process (a device
library that swallows every cancellation), it exits anyway HARD_STOP_SECONDS after the
signal, with a line on stderr. The journal commits every write, so nothing is lost.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import sys
import threading
from collections.abc import Iterator
from types import FrameType

import uvicorn

from lamplighter.config import ListensOn
from lamplighter.errors import ConfigError
from lamplighter.service import Service
from lamplighter.web.app import create_app
from lamplighter.web.limits import ConnectionLimits, guarded_protocol

GRACEFUL_SHUTDOWN_SECONDS = 1
HARD_STOP_SECONDS = 1.9


class _Server(uvicorn.Server):
    """uvicorn with two changes for a daemon: open lamp streams end as soon as shutdown starts
    (instead of holding it for the graceful timeout), and a clean stop on SIGTERM exits 0
    (uvicorn re-raises the signal after its graceful shutdown, giving status -15)."""

    def __init__(self, config: uvicorn.Config, service: Service) -> None:
        super().__init__(config)
        self.service = service

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        _arm_hard_stop()
        super().handle_exit(sig, frame)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self.service.end_watches()
        await super().shutdown(sockets)

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        with super().capture_signals():
            yield
            self._captured_signals.clear()


def uvicorn_config(service: Service, token: str) -> uvicorn.Config:
    """How the daemon serves its app: on `server.listen`, with the connection limits of `server`."""
    server_config = service.config.server
    limits = ConnectionLimits(server_config.header_timeout, server_config.body_timeout, server_config.max_connections)
    return uvicorn.Config(
        create_app(service, token), host=server_config.host, port=server_config.port, log_level="warning",
        access_log=False, lifespan="off", timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS, server_header=False,
        http=guarded_protocol(limits),
    )


def listen(settings: ListensOn) -> socket.socket:
    """A socket bound to `listen:`, or ConfigError in one line (the port is taken, the address is not
    this machine's), before anything else starts."""
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((settings.host, settings.port))
    except OSError as exc:
        sock.close()
        taken = " (another program listens there: stop it, or choose another port)" \
            if exc.errno == errno.EADDRINUSE else ""
        raise ConfigError([("server.listen", f"cannot listen on {settings.listen}: "
                                             f"{exc.strerror or exc}{taken}")]) from None
    sock.set_inheritable(True)
    return sock


async def serve(service: Service, token: str, sock: socket.socket | None = None) -> None:
    """Start the lamp controllers, serve HTTP (on `sock`, if given), and stop both cleanly on a signal."""
    server = _Server(uvicorn_config(service, token), service)
    async with service.running():
        await server.serve(sockets=[sock] if sock is not None else None)  # without one: exits 1 if the port is taken


def _arm_hard_stop() -> None:
    """Exit HARD_STOP_SECONDS from now whatever still runs; a clean stop ends the process before."""
    timer = threading.Timer(HARD_STOP_SECONDS, _exit_now)
    timer.daemon = True
    timer.start()


def _exit_now() -> None:
    sys.stderr.write(f"lamplighter: still busy {HARD_STOP_SECONDS:g} s after the stop signal; exiting anyway\n")
    sys.stderr.flush()
    os._exit(1)
