"""pywizlight's own fake WiZ bulb, reachable at a loopback address on WiZ's standard port 38899.

`pywizlight.tests.fake_bulb.startup_bulb` starts the fake on 127.0.0.1 at a random port, but
pywizlight's discovery (`find_wizlights`) both listens on and sends to UDP 38899, so a bulb
it can find must sit at 38899 on an address other than the one the searcher's answers
return to. This peer gives the fake bulb such an address (127.0.0.2 by default, still
loopback): a relay there passes every datagram to the fake bulb and its answers back to
the sender, byte for byte, as if the bulb itself lived at 127.0.0.2:38899.

    with DiscoverableWizBulb().start() as bulb:     # discovery aimed at bulb.address finds it
        ...
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

from pywizlight.tests.fake_bulb import startup_bulb

WIZ_PORT = 38899
MAC = "a8bb5006033d"  # the fake bulb's MAC address
MODULE = "ESP01_SHRGB_03"  # the fake bulb's default module name
Address = tuple[str, int]


class _Back(asyncio.DatagramProtocol):
    """The relay's socket toward the bulb for one sender: the bulb's answers go back to that sender."""

    def __init__(self, front: asyncio.DatagramTransport, sender: Address) -> None:
        self.front, self.sender = front, sender

    def datagram_received(self, data: bytes, addr: Address) -> None:
        self.front.sendto(data, self.sender)


class _Front(asyncio.DatagramProtocol):
    """The relay's socket at ADDRESS:38899, where searchers and controllers send."""

    def __init__(self, forward: Callable[[bytes, Address], None]) -> None:
        self.forward = forward

    def datagram_received(self, data: bytes, addr: Address) -> None:
        self.forward(data, addr)


@dataclass
class DiscoverableWizBulb:
    address: str = "127.0.0.2"
    received: list[bytes] = field(default_factory=list, init=False)
    _loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.new_event_loop, init=False)
    _closers: list[Callable[[], Any]] = field(default_factory=list, init=False)
    _bulb_port: int = field(default=0, init=False)
    _front: asyncio.DatagramTransport | None = field(default=None, init=False)
    _backs: dict[Address, asyncio.Future[asyncio.DatagramTransport]] = field(default_factory=dict, init=False)

    _thread: threading.Thread | None = field(default=None, init=False)

    def start(self) -> Self:
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=10)
        return self

    async def _start(self) -> None:
        shutdown, self._bulb_port = await startup_bulb()
        self._closers.append(shutdown)
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # beside the searcher's 0.0.0.0:38899
        sock.bind((self.address, WIZ_PORT))
        self._front, _ = await self._loop.create_datagram_endpoint(lambda: _Front(self._forward), sock=sock)
        self._closers.append(self._front.close)

    def _forward(self, data: bytes, sender: Address) -> None:
        self.received.append(data)
        if sender not in self._backs:
            self._backs[sender] = asyncio.ensure_future(self._open_back(sender))
        self._backs[sender].add_done_callback(lambda back: back.result().sendto(data))

    async def _open_back(self, sender: Address) -> asyncio.DatagramTransport:
        assert self._front is not None
        front = self._front
        transport, _ = await self._loop.create_datagram_endpoint(lambda: _Back(front, sender),
                                                                 remote_addr=("127.0.0.1", self._bulb_port))
        self._closers.append(transport.close)
        return transport

    def stop(self) -> None:
        if self._thread is None:
            return
        asyncio.run_coroutine_threadsafe(self._close_all(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    async def _close_all(self) -> None:
        for close in reversed(self._closers):
            close()
        await asyncio.sleep(0)  # let the transports finish closing

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.stop()
