"""Devices announcing themselves by mDNS on loopback, through the real zeroconf library.

A Hue bridge announces `_hue._tcp.local.` (TXT `bridgeid`, `modelid`) and WLED
`_wled._tcp.local.` (TXT `mac`); here a zeroconf instance bound to 127.0.0.1 answers for
them exactly as it would on a LAN, so nothing reaches the real network. It runs in its own
thread, so a test's event loop (or the CLI's) can be busy meanwhile:

    with MdnsAnnouncer() as announcer:
        announcer.announce("_wled._tcp.local.", "kitchen", port=80, txt={"mac": "aabbccddeeff"})
"""

from __future__ import annotations

import socket
from types import TracebackType
from typing import Self

from zeroconf import IPVersion, ServiceInfo, Zeroconf


class MdnsAnnouncer:
    def __init__(self, address: str = "127.0.0.1") -> None:
        self.address = address
        self._zeroconf = Zeroconf(interfaces=[address], ip_version=IPVersion.V4Only, use_asyncio=False)

    def announce(self, service: str, instance: str, port: int, txt: dict[str, str]) -> None:
        host = instance.lower().replace(" ", "-")
        info = ServiceInfo(service, f"{instance}.{service}", port=port, properties=txt,
                           addresses=[socket.inet_aton(self.address)], server=f"{host}.local.")
        self._zeroconf.register_service(info)

    def close(self) -> None:
        self._zeroconf.unregister_all_services()
        self._zeroconf.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()
