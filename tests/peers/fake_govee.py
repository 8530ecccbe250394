"""A Govee Wi-Fi light on loopback, speaking the Govee LAN API (JSON over UDP); there is no Govee emulator.

The LAN API as a device speaks it ("LAN Control" switched on in the Govee Home app):

- scan: `{"msg":{"cmd":"scan","data":{"account_topic":"reserve"}}}` to UDP 4001 (multicast
  239.255.255.250, or sent to the device) is answered to port 4002 of the sender's
  address: `{"msg":{"cmd":"scan","data":{"ip":...,"device":...,"sku":...,...}}}`;
- commands to UDP 4003, never answered: `turn` {"value": 0|1}, `brightness` {"value":
  1-100}, `colorwc` {"color": {"r","g","b"}, "colorTemInKelvin": K} (K = 0: the colour;
  else a white of K kelvin), `ptReal` (scenes, recorded only);
- `devStatus` {} to 4003 is answered to port 4002 of the sender's address with
  `{"msg":{"cmd":"devStatus","data":{"onOff":1,"brightness":100,"color":{...},"colorTemInKelvin":0}}}`.

A device keeps its colour and brightness while off, and `colorwc` or `brightness` do not
switch it on (Govee does not document either; this fake takes the stricter reading).
Datagrams that are not JSON commands are ignored, as a device does.

The fake binds its scan and command ports on its own loopback address (127.0.0.x: several
fakes can share the port numbers, as real devices do on their own addresses) and answers
to `reply_port` of the sender's address, as a device answers to 4002 whatever port asked.
Every datagram is recorded with its arrival time (`received`), every change of what the
light shows too (`changes`). `unplug()`: the device leaves the network; datagrams are lost
(never executed) until `plug()`.

    async with FakeGovee(reply_port=listen_port) as light:
        url = light.lamp_url(listen_port, timeout="0.5")
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

SHOWN = ("onOff", "brightness", "color", "colorTemInKelvin")


def free_udp_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Datagram:
    """One message as the device received it."""

    at: float  # time.monotonic() on arrival
    port: str  # "scan" or "command"
    cmd: str
    data: Any


class _Port(asyncio.DatagramProtocol):
    """One of the device's UDP ports, named "scan" or "command"."""

    def __init__(self, name: str, received: Callable[[str, bytes, tuple[str, int]], None]) -> None:
        self.name = name
        self.received = received

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.received(self.name, data, addr)


class FakeGovee:
    def __init__(self, reply_port: int, host: str = "127.0.0.1", *, scan_port: int | None = None,
                 command_port: int | None = None, sku: str = "H6008", device: str = "1F:80:C5:32:32:36:72:4E") -> None:
        self.host = host
        self.reply_port = reply_port
        self.scan_port = scan_port or free_udp_port(host)
        self.command_port = command_port or free_udp_port(host)
        self.sku = sku
        self.device = device
        self.state: dict[str, Any] = {"onOff": 1, "brightness": 100, "color": {"r": 255, "g": 255, "b": 255},
                                      "colorTemInKelvin": 0}
        self.received: list[Datagram] = []
        self.changes: list[tuple[float, dict[str, Any]]] = []
        self.online = True
        self._transports: dict[str, asyncio.DatagramTransport] = {}

    def lamp_url(self, listen_port: int, **options: str) -> str:
        ports = {"scan_port": self.scan_port, "listen_port": listen_port, "command_port": self.command_port}
        query = "&".join(f"{k}={v}" for k, v in {**ports, **options}.items())
        return f"govee://{self.host}?{query}"

    def shows(self, **state: Any) -> bool:
        return all(self.state[k] == v for k, v in state.items())

    def commands(self, *cmds: str) -> list[Datagram]:
        """What arrived on the command port (of these kinds, if given)."""
        return [d for d in self.received if d.port == "command" and (not cmds or d.cmd in cmds)]

    def unplug(self) -> None:
        self.online = False

    def plug(self) -> None:
        self.online = True

    async def __aenter__(self) -> FakeGovee:
        for name, number in (("scan", self.scan_port), ("command", self.command_port)):
            self._transports[name], _ = await asyncio.get_running_loop().create_datagram_endpoint(
                lambda name=name: _Port(name, self._receive), local_addr=(self.host, number))
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        trace: TracebackType | None) -> None:
        for transport in self._transports.values():
            transport.close()

    def _receive(self, port: str, data: bytes, addr: tuple[str, int]) -> None:
        if not self.online:
            return
        try:
            message = json.loads(data)["msg"]
            cmd, body = str(message["cmd"]), message["data"]
        except (ValueError, KeyError, TypeError):
            return
        self.received.append(Datagram(time.monotonic(), port, cmd, body))
        if port == "scan" and cmd == "scan":
            self._answer(port, addr, cmd, {"ip": self.host, "device": self.device, "sku": self.sku,
                                           "bleVersionHard": "3.01.01", "bleVersionSoft": "1.03.01",
                                           "wifiVersionHard": "1.00.10", "wifiVersionSoft": "1.02.03"})
        elif port == "command" and cmd == "devStatus":
            self._answer(port, addr, cmd, dict(self.state))
        elif port == "command":
            self._execute(cmd, body)

    def _answer(self, port: str, addr: tuple[str, int], cmd: str, data: dict[str, Any]) -> None:
        message = json.dumps({"msg": {"cmd": cmd, "data": data}}, separators=(",", ":")).encode()
        self._transports[port].sendto(message, (addr[0], self.reply_port))

    def _execute(self, cmd: str, body: Any) -> None:
        try:
            changes = {"turn": _turn, "brightness": _brightness, "colorwc": _colorwc}[cmd](body)
        except (KeyError, TypeError, ValueError):
            return  # an unknown or malformed command is ignored
        self.state.update(changes)
        self.changes.append((time.monotonic(), {k: self.state[k] for k in SHOWN}))


def _turn(body: dict[str, Any]) -> dict[str, Any]:
    value = body["value"]
    if value not in (0, 1):
        raise ValueError(value)
    return {"onOff": value}


def _brightness(body: dict[str, Any]) -> dict[str, Any]:
    value = body["value"]
    if not isinstance(value, int) or not 0 <= value <= 100:
        raise ValueError(value)
    return {"brightness": value}


def _colorwc(body: dict[str, Any]) -> dict[str, Any]:
    color = {k: int(body["color"][k]) for k in ("r", "g", "b")}
    kelvin = int(body.get("colorTemInKelvin", 0))
    if not all(0 <= v <= 255 for v in color.values()) or not (kelvin == 0 or 2000 <= kelvin <= 9000):
        raise ValueError(body)
    return {"color": color, "colorTemInKelvin": kelvin}
