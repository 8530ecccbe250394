"""Run the service and its HTTP face in one process until SIGTERM or Ctrl-C; SIGHUP reloads the configuration.

A stop is bounded: open lamp streams end at once, requests get GRACEFUL_SHUTDOWN_SECONDS,
the service bounds its own tasks, and should anything still hold the process (a device
library that swallows every cancellation), it exits anyway HARD_STOP_SECONDS after the
signal, with a line on stderr. The journal commits every write, so nothing is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import Iterator
from types import FrameType
from typing import TYPE_CHECKING

import uvicorn

from lamplighter.config import ListensOn
from lamplighter.errors import ConfigError, StoreError
from lamplighter.service import Service
from lamplighter.systemd import keep_watchdog, notify, watchdog_interval
from lamplighter.web.app import create_app
from lamplighter.web.limits import ConnectionLimits, guarded_protocol

if TYPE_CHECKING:  # the hub's modules (aiomqtt, the rooms) load only for `lamplighter hub`
    from lamplighter.service.hub import Hub

log = logging.getLogger(__name__)

GRACEFUL_SHUTDOWN_SECONDS = 1
HARD_STOP_SECONDS = 1.9


class _Server(uvicorn.Server):
    """uvicorn with two changes for a daemon: open lamp streams end as soon as shutdown starts
    (instead of holding it for the graceful timeout), and a clean stop on SIGTERM exits 0
    (uvicorn re-raises the signal after its graceful shutdown, giving status -15)."""

    def __init__(self, config: uvicorn.Config, service: Service) -> None:
        super().__init__(config)
        self.service = service
        self.watchdog: asyncio.Task[None] | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:  # bound and listening (uvicorn exits 1 instead if it cannot bind)
            self.watchdog = _tell_systemd_ready(self.service)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        notify("STOPPING=1")
        _arm_hard_stop()
        super().handle_exit(sig, frame)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if self.watchdog is not None:
            self.watchdog.cancel()
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
        log_config=None,  # uvicorn's own handlers would print text; without them its lines go through ours
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
        with reload_on_hangup(service):
            await server.serve(sockets=[sock] if sock is not None else None)  # no socket: exits 1 if it is taken


@contextlib.contextmanager
def reload_on_hangup(service: Service) -> Iterator[None]:
    """While the block runs, SIGHUP reloads the configuration (as Alertmanager and most daemons do)."""
    loop = asyncio.get_running_loop()
    reloads: set[asyncio.Task[None]] = set()

    def hangup() -> None:
        task = loop.create_task(_reload(service), name="reload on SIGHUP")
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    loop.add_signal_handler(signal.SIGHUP, hangup)
    try:
        yield
    finally:
        loop.remove_signal_handler(signal.SIGHUP)


async def _reload(service: Service) -> None:
    log.info("SIGHUP: reloading the configuration from %s", service.config_path or "(no file)")
    with contextlib.suppress(ConfigError, StoreError):
        await service.reload()  # logs what changed, or why nothing did (every problem in the file)


def _tell_systemd_ready(service: Service) -> asyncio.Task[None] | None:
    """READY=1 now; the watchdog pinger's task if systemd asks for pings (WatchdogSec=)."""
    notify(f"READY=1\nSTATUS=serving on {service.config.server.listen}")
    interval = watchdog_interval()
    if interval is None:
        return None
    return asyncio.create_task(keep_watchdog(service.keeping_time, interval), name="systemd watchdog")


async def serve_hub(hub: Hub, token: str) -> None:
    """`serve` for a hub: the service with its rooms, the MQTT link to the agents, and HTTP."""
    server = _Server(uvicorn_config(hub.service, token), hub.service)
    await hub.start()
    try:
        await server.serve()
    finally:
        await hub.stop()


def _arm_hard_stop() -> None:
    """Exit HARD_STOP_SECONDS from now whatever still runs; a clean stop ends the process before."""
    timer = threading.Timer(HARD_STOP_SECONDS, _exit_now)
    timer.daemon = True
    timer.start()


def _exit_now() -> None:
    sys.stderr.write(f"lamplighter: still busy {HARD_STOP_SECONDS:g} s after the stop signal; exiting anyway\n")
    sys.stderr.flush()
    os._exit(1)
