"""A Yeelight bulb's discovery side on loopback: it answers the SSDP-like M-SEARCH on UDP 1982.

There is no Yeelight emulator (tests/peers/fake_yeelight.py speaks the control protocol on
TCP, not discovery). From the Yeelight WiFi Light Inter-Operation Specification, section 3:
a search is `M-SEARCH * HTTP/1.1` with `MAN: "ssdp:discover"` and `ST: wifi_bulb`, sent to
239.255.255.250:1982 or to the bulb; the bulb answers the searcher with an HTTP-like header
block whose `Location` is its control address, followed by its id, model, firmware, the
methods it supports, its state and its name.

    with YeelightResponder(name="desk").start() as bulb:    # a UDP server in a thread
        ...                                                 # bulb.searches: what it was asked

The yeelight library fixes the port (1982), so one responder per loopback address at a time.
"""

from __future__ import annotations

import socketserver
import threading
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self

SEARCH = "M-SEARCH * HTTP/1.1"


@dataclass(kw_only=True)
class YeelightResponder:
    name: str = "desk"
    model: str = "color"
    bulb_id: str = "0x000000000015243f"
    host: str = "127.0.0.1"
    control_port: int = 55443
    searches: list[bytes] = field(default_factory=list, init=False)
    _server: socketserver.UDPServer | None = field(default=None, init=False)

    def start(self) -> Self:
        responder = self

        class Handler(socketserver.DatagramRequestHandler):
            def handle(self) -> None:
                data, sock = self.request
                if responder.is_search(data):
                    responder.searches.append(data)
                    sock.sendto(responder.capabilities().encode(), self.client_address)

        self._server = socketserver.UDPServer((self.host, 1982), Handler)
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    @staticmethod
    def is_search(data: bytes) -> bool:
        lines = data.decode(errors="replace").split("\r\n")
        return lines[0] == SEARCH and 'MAN: "ssdp:discover"' in lines and "ST: wifi_bulb" in lines

    def capabilities(self) -> str:
        return "\r\n".join([
            "HTTP/1.1 200 OK", "Cache-Control: max-age=3600", "Date: ", "Ext: ",
            f"Location: yeelight://{self.host}:{self.control_port}", "Server: POSIX UPnP/1.0 YGLC/1",
            f"id: {self.bulb_id}", f"model: {self.model}", "fw_ver: 18",
            "support: get_prop set_default set_power toggle set_bright start_cf stop_cf set_scene cron_add"
            " cron_get cron_del set_ct_abx set_rgb",
            "power: on", "bright: 100", "color_mode: 2", "ct: 4000", "rgb: 16711680", "hue: 100", "sat: 35",
            f"name: {self.name}", ""])

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.stop()
