"""Running under systemd: the unit verifies, and the daemon speaks sd_notify honestly.

A real `lamplighter run` is started with $NOTIFY_SOCKET pointing at a datagram socket this
test binds (as systemd does for `Type=notify`) and $WATCHDOG_USEC set (as `WatchdogSec=` does).
"""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from lamplighter.cli.systemd_unit import unit_text
from lamplighter.service import Service
from lamplighter.systemd import keep_watchdog, notify, watchdog_interval
from tests.daemon import TOKEN, Daemon

SYSTEMD_ANALYZE = "/usr/bin/systemd-analyze"
WATCHDOG_USEC = 200_000  # pings every 0.1 s


def verify(unit: Path) -> str:
    """What `systemd-analyze verify` says about `unit` (empty when it has nothing to complain about)."""
    done = subprocess.run([SYSTEMD_ANALYZE, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    return f"{done.stdout}{done.stderr}".strip() + ("" if done.returncode == 0 else f"\nexit status {done.returncode}")


def rendered_unit(tmp_path: Path, *args: str) -> Path:
    """The unit as `lamplighter systemd-unit ARGS` prints it, written to tmp_path/lamplighter.service."""
    done = subprocess.run([sys.executable, "-m", "lamplighter", "systemd-unit", *args],
                          capture_output=True, text=True, timeout=60, check=True)
    unit = tmp_path / "lamplighter.service"
    unit.write_text(done.stdout, encoding="utf-8")
    return unit


def test_the_unit_for_this_installation_verifies(tmp_path: Path) -> None:
    unit = rendered_unit(tmp_path)
    text = unit.read_text()
    assert f"ExecStart={Path(sys.executable).absolute().parent / 'lamplighter'} run " in text
    for line in ("Type=notify", "WatchdogSec=30s", "StateDirectory=lamplighter", "NoNewPrivileges=yes",
                 "ProtectSystem=strict", "EnvironmentFile=-%E/lamplighter/secrets.env"):
        assert line in text.splitlines()
    assert verify(unit) == ""
    # the checker does complain, so the empty answer above means something
    unit.write_text(text.replace("ProtectClock=", "ProtectClok="), encoding="utf-8")
    assert "Unknown key 'ProtectClok'" in verify(unit)


def test_the_unit_names_the_program_given_with_exec(tmp_path: Path) -> None:
    program = tmp_path / "bin" / "lamplighter"
    program.parent.mkdir()
    program.write_text("#!/bin/sh\n")
    program.chmod(0o755)
    unit = rendered_unit(tmp_path, "--exec", str(program))
    assert f"ExecStart={program} run --config %E/lamplighter/lamplighter.yaml" in unit.read_text().splitlines()
    assert verify(unit) == ""
    missing = subprocess.run([sys.executable, "-m", "lamplighter", "systemd-unit", "--exec", str(tmp_path / "nope")],
                             capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2 and "does not exist" in missing.stderr


def test_a_program_under_home_gets_a_read_only_home() -> None:
    lines = unit_text(Path("/home/ann/.local/bin/lamplighter")).splitlines()
    assert "ProtectHome=read-only" in lines and "ProtectHome=yes" not in lines
    assert "ProtectHome=yes" in unit_text(Path("/opt/lamplighter/bin/lamplighter")).splitlines()


@pytest.fixture(params=["path", "abstract"])
def notify_socket(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    """A bound datagram socket and its $NOTIFY_SOCKET spelling (a path, or '@name' for the abstract namespace)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    if request.param == "path":
        address = str(tmp_path / "notify.sock")
        sock.bind(address)
    else:
        address = f"@lamplighter-test-{time.monotonic_ns()}"
        sock.bind("\0" + address[1:])
    with sock:
        yield sock, address


def receive(sock: socket.socket, timeout: float) -> str | None:
    sock.settimeout(timeout)
    try:
        return sock.recv(4096).decode()
    except TimeoutError:
        return None


@pytest.mark.slow
def test_the_daemon_says_ready_only_once_it_serves_pings_the_watchdog_and_says_stopping(
        tmp_path: Path, notify_socket: tuple[socket.socket, str]) -> None:
    sock, address = notify_socket
    with Daemon(tmp_path / "d", "") as daemon:
        daemon.config_path.parent.mkdir(parents=True)
        daemon.config_path.write_text(f"server: {{listen: 127.0.0.1:{daemon.port}}}\nstate_dir: {tmp_path / 'state'}\n")
        env = {**daemon.env(), "NOTIFY_SOCKET": address, "WATCHDOG_USEC": str(WATCHDOG_USEC)}
        daemon.spawn([sys.executable, "-m", "lamplighter", "run", "-c", str(daemon.config_path)], env=env)
        first = receive(sock, timeout=30)
        assert first is not None, daemon.log_tail()
        # the first word is READY=1, and when it arrives the port already answers
        assert first.splitlines() == ["READY=1", f"STATUS=serving on 127.0.0.1:{daemon.port}"]
        assert httpx.get(f"{daemon.url}/healthz", timeout=1).status_code == 200
        assert httpx.get(f"{daemon.url}/api/lamps", headers={"Authorization": f"Bearer {TOKEN}"},
                         timeout=5).status_code == 200

        pings = [receive(sock, timeout=2) for _ in range(5)]
        assert pings == ["WATCHDOG=1"] * 5, daemon.log_tail()

        assert daemon.process is not None
        daemon.process.send_signal(signal.SIGTERM)
        after_term = []
        while (message := receive(sock, timeout=5)) is not None and message != "STOPPING=1":
            after_term.append(message)
        assert message == "STOPPING=1", after_term
        assert set(after_term) <= {"WATCHDOG=1"}
        assert daemon.process.wait(timeout=10) == 0


def test_no_notify_socket_means_no_word_and_no_watchdog() -> None:
    assert notify("READY=1", {}) is False
    assert watchdog_interval({}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "0"}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}) is None  # meant for another process
    assert watchdog_interval({"WATCHDOG_USEC": "30000000"}) == 15.0


async def test_the_watchdog_stops_when_the_deadline_task_dies(
        running: Callable[..., object], notify_socket: tuple[socket.socket, str]) -> None:
    sock, address = notify_socket
    service = await running()
    assert isinstance(service, Service)
    assert service.keeping_time()
    pinger = asyncio.create_task(keep_watchdog(service.keeping_time, 0.01, {"NOTIFY_SOCKET": address}))
    await asyncio.sleep(0.05)
    assert receive(sock, timeout=1) == "WATCHDOG=1"

    deadlines = next(task for task in asyncio.all_tasks() if task.get_name() == "deadlines")
    deadlines.cancel()
    await asyncio.wait_for(pinger, timeout=5)  # the pinger gives up by itself
    assert not service.keeping_time()
    while receive(sock, timeout=0.05) is not None:  # what was sent before it ended
        pass
    await asyncio.sleep(0.05)
    assert receive(sock, timeout=0.1) is None
