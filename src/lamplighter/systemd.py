"""Tell systemd how the daemon is doing: READY=1, WATCHDOG=1, STOPPING=1 (`Type=notify`, `WatchdogSec=`).

Hand-written on purpose: the protocol is one datagram of `NAME=VALUE` lines sent to the
AF_UNIX socket named in $NOTIFY_SOCKET (a leading '@' means Linux's abstract namespace),
see sd_notify(3). The library that ships with systemd (systemd-python) is a C extension that
needs libsystemd's headers and a compiler to install, which a wheel for a Raspberry Pi or a
slim container should not need; the pure-Python `sdnotify` package has seen no release
since 2017. Outside systemd ($NOTIFY_SOCKET unset) every call does nothing.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable, Mapping

log = logging.getLogger(__name__)


def notify(state: str, environ: Mapping[str, str] = os.environ) -> bool:
    """Send `state` (e.g. "READY=1") to the service manager; False when not run by one or on failure."""
    address = environ.get("NOTIFY_SOCKET", "")
    if not address or address[0] not in "/@":
        return False  # unset, or a vsock address (AF_VSOCK: virtual machines) we do not speak
    target = "\0" + address[1:] if address[0] == "@" else address
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.sendto(state.encode(), target)
    except OSError as exc:
        log.warning("cannot notify systemd at %s: %s", address, exc)
        return False
    return True


def watchdog_interval(environ: Mapping[str, str] = os.environ) -> float | None:
    """Seconds between WATCHDOG=1 pings (half of $WATCHDOG_USEC, as sd_watchdog_enabled(3) advises);
    None when systemd expects none (unset, zero, or meant for another process)."""
    pid = environ.get("WATCHDOG_PID")
    if pid and pid != str(os.getpid()):
        return None
    try:
        usec = int(environ.get("WATCHDOG_USEC", "0"))
    except ValueError:
        return None
    return usec / 2_000_000 if usec > 0 else None


async def keep_watchdog(alive: Callable[[], bool], interval: float, environ: Mapping[str, str] = os.environ) -> None:
    """Ping WATCHDOG=1 every `interval` seconds for as long as `alive()` holds.

    It runs on the daemon's event loop, so a stalled loop stops the pings too; once `alive()`
    is false it stops pinging for good and systemd restarts the service when WatchdogSec runs out."""
    while alive():
        notify("WATCHDOG=1", environ)
        await asyncio.sleep(interval)
    log.error("the service's deadline task has ended; no more watchdog pings, systemd will restart the daemon")
