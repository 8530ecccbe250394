"""A room behind a router, in Linux network namespaces: its link can drop, or go silent, while real programs run.

    with Network.create() as net:              # three namespaces: core (broker, hub), router, room (agent)
        broker = NsMosquitto(tmp / "mqtt", host=CORE_ADDRESS, netns=net.core).start()
        hub = NsHub(tmp / "hub", broker, netns=net.core).start()
        study = NsAgent(tmp / "study", broker, room="study", netns=net.room).start()
        net.room_link_down(); ...; net.room_link_up()   # the room's Wi-Fi drops: its interface goes down
        net.go_silent(); ...; net.heal()                # the way between them drops every packet, silently
        net.trickle("64kbit")                           # a slow line: the router queues what is more

    core  10.77.0.1 --veth-- 10.77.0.2  router  10.77.1.1 --veth-- 10.77.1.2  room

Each namespace is private, so the addresses are the same in every run; the namespaces' names
carry the test process's id, so that parallel runs do not collide and those left behind by
an aborted run are recognised (their process is gone) and removed by the next one.

A silent cut is a blackhole route on the router for both ends: packets vanish, no ICMP answer,
no TCP reset, both ends' links stay up, as when a home router or the line behind it hangs
(this kernel has no sch_netem and the machine no iptables, so no `tc netem` loss or DROP rule).

A program runs in a namespace through `ip netns exec`; the test talks to it from a thread that
entered the namespace (`NetNs.call`): its 127.0.0.1 is the namespace's own. Needs root and
iproute2; without them `Network.create` raises (a test that needs it fails, never skips).
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import os
import re
import signal
import subprocess
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx

from tests.peers.mosquitto import Mosquitto
from tests.peers.process import PeerProcess, Probe
from tests.rooms import AgentProcess, HubProcess

CORE_ADDRESS = "10.77.0.1"  # the broker's (and the hub's) namespace
ROUTER_CORE, ROUTER_ROOM = "10.77.0.2", "10.77.1.1"
ROOM_ADDRESS = "10.77.1.2"  # the room agent's namespace
ROOM_INTERFACE = "wlan0"
PREFIX = "lln"  # lamplighter netcut: lln<pid>x<n>-core, -router, -room
CLONE_NEWNET = 0x40000000
IP_TIMEOUT = 10.0

T = TypeVar("T")


def ip(*args: str) -> None:
    """Run `ip ARGS`; RuntimeError with its message when it fails (no ip, not root, no namespaces)."""
    run(["ip", *args])


def run(command: list[str]) -> str:
    """Run an iproute2 command, its output; RuntimeError with its message when it fails."""
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=IP_TIMEOUT)
    except FileNotFoundError:
        raise RuntimeError(f"`{command[0]}` (iproute2) is not installed: `make test` installs it") from None
    if done.returncode != 0:
        raise RuntimeError(f"`{' '.join(command)}` failed ({done.returncode}): {done.stderr.strip()} "
                           "(network namespaces need root and iproute2)")
    return done.stdout


@dataclass
class NetNs:
    """One named network namespace (`ip netns add`)."""

    name: str
    _thread: ThreadPoolExecutor | None = field(default=None, repr=False)

    def command(self, command: list[str]) -> list[str]:
        """`command` to run inside the namespace."""
        return ["ip", "netns", "exec", self.name, *command]

    def ip(self, *args: str) -> None:
        ip("-n", self.name, *args)

    def call(self, function: Callable[..., T], *args: Any) -> T:
        """`function(*args)` in a thread inside the namespace: the sockets it opens are the namespace's."""
        if self._thread is None:
            self._thread = ThreadPoolExecutor(1, thread_name_prefix=self.name, initializer=self._enter)
        return self._thread.submit(function, *args).result()

    def _enter(self) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        fd = os.open(f"/run/netns/{self.name}", os.O_RDONLY)
        try:
            if libc.setns(fd, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), f"setns into network namespace {self.name}")
        finally:
            os.close(fd)

    def delete(self) -> None:
        """Kill what still runs inside (only our own programs run there) and remove the namespace."""
        if self._thread is not None:
            self._thread.shutdown(wait=False, cancel_futures=True)
        pids = subprocess.run(["ip", "netns", "pids", self.name], capture_output=True, text=True, timeout=IP_TIMEOUT)
        for pid in pids.stdout.split():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)
        ip("netns", "del", self.name)


@dataclass
class Network:
    """core (broker and hub) <-> router <-> room (an agent), each in its own namespace."""

    core: NetNs
    router: NetNs
    room: NetNs

    @classmethod
    @contextlib.contextmanager
    def create(cls) -> Iterator[Network]:
        """The three namespaces, linked and addressed; all removed on leaving, whatever happened."""
        remove_abandoned()
        base = f"{PREFIX}{os.getpid()}x{next(_serial)}"
        made: list[NetNs] = []
        try:
            for part in ("core", "router", "room"):
                ip("netns", "add", f"{base}-{part}")
                made.append(NetNs(f"{base}-{part}"))
            network = cls(*made)
            network._wire()
            yield network
        finally:
            failed: list[RuntimeError] = []
            for netns in made:  # every one, even if one fails (the next run removes what is left)
                try:
                    netns.delete()
                except RuntimeError as exc:
                    failed.append(exc)
            if failed:
                raise failed[0]

    def _wire(self) -> None:
        core, router, room = self.core, self.router, self.room
        ip("link", "add", "uplink", "netns", core.name, "type", "veth", "peer", "name", "to-core", "netns", router.name)
        ip("link", "add", "to-room", "netns", router.name, "type", "veth", "peer", "name", ROOM_INTERFACE,
           "netns", room.name)
        for netns, interface, address in ((core, "uplink", CORE_ADDRESS), (router, "to-core", ROUTER_CORE),
                                          (router, "to-room", ROUTER_ROOM), (room, ROOM_INTERFACE, ROOM_ADDRESS)):
            netns.ip("addr", "add", f"{address}/30", "dev", interface)
            netns.ip("link", "set", interface, "up")
        for netns in (core, router, room):
            netns.ip("link", "set", "lo", "up")
        core.ip("route", "add", "default", "via", ROUTER_CORE)
        room.ip("route", "add", "default", "via", ROUTER_ROOM)
        router.call(_forward)

    def room_link_down(self) -> None:
        """The room's link drops (Wi-Fi gone): its interface goes down, its routes with it."""
        self.room.ip("link", "set", ROOM_INTERFACE, "down")

    def room_link_up(self) -> None:
        """The link is back, and the default route (as DHCP would give it again)."""
        self.room.ip("link", "set", ROOM_INTERFACE, "up")
        self.room.ip("route", "replace", "default", "via", ROUTER_ROOM)

    def go_silent(self) -> None:
        """The router drops every packet between room and core, silently (no ICMP, no reset)."""
        for address in (CORE_ADDRESS, ROOM_ADDRESS):
            self.router.ip("route", "add", "blackhole", f"{address}/32")

    def trickle(self, rate: str) -> None:
        """The router forwards at most `rate` (e.g. "64kbit") each way, queues up to 1 s of it and drops the
        rest (a slow line; a token bucket: this kernel has no netem for a plain delay)."""
        for interface in ("to-core", "to-room"):
            run(self.router.command(["tc", "qdisc", "add", "dev", interface, "root", "tbf", "rate", rate,
                                     "burst", "2kb", "latency", "1s"]))

    def heal(self) -> None:
        """The router forwards again."""
        for address in (CORE_ADDRESS, ROOM_ADDRESS):
            self.router.ip("route", "del", "blackhole", f"{address}/32")


def _forward() -> None:
    """Turn on IPv4 forwarding in the calling thread's namespace (the router)."""
    with open("/proc/sys/net/ipv4/ip_forward", "w") as forwarding:
        forwarding.write("1\n")



_serial = itertools.count(1)


def remove_abandoned() -> None:
    """Namespaces of ours whose test process is gone (a run killed before its cleanup)."""
    for line in run(["ip", "netns", "list"]).splitlines():
        found = re.match(rf"({PREFIX}(\d+)x\d+-\w+)\b", line)
        if found and not os.path.exists(f"/proc/{found[2]}"):
            with contextlib.suppress(RuntimeError):
                NetNs(found[1]).delete()


@dataclass
class InNamespace(PeerProcess):
    """A real program started inside a namespace, and probed from inside it."""

    netns: NetNs = field(kw_only=True)

    def spawn(self, command: list[str], env: Any = None) -> None:
        super().spawn(self.netns.command(command), env)

    def wait_ready(self, ready: Probe, timeout: float) -> None:
        super().wait_ready(lambda: self.netns.call(ready), timeout)


@dataclass
class NsMosquitto(InNamespace, Mosquitto):
    """Mosquitto listening on `host` inside its namespace."""


class _HttpInNamespace(InNamespace):
    def get(self, path: str) -> Any:
        return self.netns.call(super().get, path)  # type: ignore[misc]

    def post(self, path: str, body: dict[str, Any]) -> Any:
        return self.netns.call(super().post, path, body)  # type: ignore[misc]


@dataclass
class NsHub(_HttpInNamespace, HubProcess):
    """`lamplighter hub` inside a namespace; its API answers on the namespace's 127.0.0.1."""


@dataclass
class NsAgent(_HttpInNamespace, AgentProcess):
    """`lamplighter agent` inside a namespace; its API answers on the namespace's 127.0.0.1."""

    def connected(self) -> bool:
        """What the agent's /healthz says of its broker connection."""
        return bool(self.netns.call(_healthz, self.url)["connected"])


def _healthz(url: str) -> dict[str, Any]:
    answer: dict[str, Any] = httpx.get(f"{url}/healthz", timeout=5).json()
    return answer
