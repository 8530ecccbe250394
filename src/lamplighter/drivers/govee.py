"""`govee://IP`: a Govee Wi-Fi light through its LAN API (JSON over UDP), with govee-local-api.

"LAN Control" must be switched on for the light in the Govee Home app. Govee fixes the
ports: a light takes a scan on UDP 4001 and commands on 4003, and answers to UDP 4002 of
whoever asked. Every Govee lamp of one Lamplighter therefore listens on the same local
port, so this module keeps one govee-local-api controller per listen port, shared by all
of them. A light is found by a scan sent to its address (no multicast needed), and
recognised by the address it answers from: the URL names it by IPv4 address.

    govee://192.168.1.60          govee://192.168.1.60?timeout=5

The options `scan_port`, `listen_port` and `command_port` move those three ports, for a
fake light on loopback; a real light always uses 4001, 4002 and 4003. Lamps that share a
listen port must agree on the other two.

A change is three commands, `colorwc` (the colour at full value, or a colour temperature to
restore a white), `brightness` (with the colour's own value folded in) and `turn`, in that
order: a light that is off comes on already showing the colour, and one being switched
off keeps the restored colour for the next time someone switches it on. The LAN API has no
transition setting and no blink or pulse; the lamp controller draws those as solid frames.

Commands are never acknowledged. The one answer a light gives is `devStatus` (power,
brightness, colour, colour temperature), which `read_state` asks for; no answer within the
timeout means the light is offline. The lamp controller reads every new look back that
way and sends it again if a datagram was lost. Restore is exact: the power, brightness and
colour or colour temperature read back are what is sent back.

Govee publishes no rate limit for the LAN API. The driver sends at most 10 datagrams a
second to a light, the pace we keep for other small Wi-Fi lights (WLED), and so at most
one change every 0.3 s: quick enough for an emulated blink (a frame every 0.5 s).
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

from govee_local_api import GoveeController

from lamplighter.drivers.base import Driver, LampUrl
from lamplighter.drivers.color import RGB, from_hsv, to_hex, to_hsv, to_rgb
from lamplighter.drivers.native import Readings
from lamplighter.drivers.options import TIMEOUT, check_options, require, timeout_option
from lamplighter.drivers.pacing import RateLimit
from lamplighter.drivers.shared import SharedHosts
from lamplighter.errors import DeviceOffline, DriverError, LampUrlError
from lamplighter.model import LampState, Signal

DEFAULT_TIMEOUT = 2.0
MESSAGES_PER_SECOND = 10
MESSAGES_PER_CHANGE = 3
SCAN_PORT, LISTEN_PORT, COMMAND_PORT = "scan_port", "listen_port", "command_port"
PORT_OPTIONS = {SCAN_PORT: 4001, LISTEN_PORT: 4002, COMMAND_PORT: 4003}  # fixed by Govee
BRIGHTNESS_MIN = 1
EXAMPLE = "govee://192.168.1.60"


@dataclass(frozen=True)
class Ports:
    """The light's scan and command ports and our listen port: Govee's own, except for a fake."""

    scan: int
    listen: int
    command: int


@dataclass(frozen=True)
class Look:
    """What a light shows, in its own terms (as devStatus reports it)."""

    on: bool
    rgb: RGB
    kelvin: int  # a white of this colour temperature; 0: the colour is `rgb`
    brightness: int


class Listener:
    """One GoveeController on one local port, shared by every Govee lamp that listens there.

    A light's answers carry nothing that ties them to a question, and every question goes
    to every light the controller knows, so the listener counts the questions each light
    has not answered yet: its state is known once it has answered them all.
    """

    def __init__(self, ports: Ports) -> None:
        self.ports = ports
        self.controller = GoveeController(
            loop=asyncio.get_running_loop(), broadcast_port=ports.scan, listening_port=ports.listen,
            device_command_port=ports.command, discovery_enabled=False, update_enabled=False,
            evict_enabled=False, discovered_callback=self._found)
        self._started = False
        self._lock = asyncio.Lock()
        self._awaited: dict[str, asyncio.Future[Any]] = {}  # IP -> the device, once it answers a scan
        self._unanswered: dict[str, int] = {}  # IP -> devStatus questions it has not answered yet
        self._settled: dict[str, asyncio.Event] = {}  # IP -> set when it has answered every question

    async def start(self) -> None:
        async with self._lock:
            if not self._started:
                await self.controller.start()
                self._started = True

    async def stop(self) -> None:
        await self.controller.cleanup().wait()

    async def find(self, ip: str, timeout: float) -> Any:
        """The device at `ip`, scanned for if not yet known; TimeoutError when it does not answer."""
        device = self.controller.get_device_by_ip(ip)
        if device is not None:
            return device
        if ip not in self._awaited:
            self._awaited[ip] = asyncio.get_running_loop().create_future()
        if not self.controller.add_device_to_discovery_queue(ip):
            self.controller.send_discovery_message()  # queued by an earlier try: ask again now
        async with asyncio.timeout(timeout):
            return await asyncio.shield(self._awaited[ip])

    async def status(self, device: Any, timeout: float) -> None:
        """Ask for devStatus and return once `device` answered this and every earlier question
        (its state is then up to date); TimeoutError when it does not."""
        for known in self.controller.devices:
            self._unanswered[known.ip] = self._unanswered.get(known.ip, 0) + 1
        settled = self._settled.setdefault(device.ip, asyncio.Event())
        settled.clear()
        self.controller.send_update_message()
        try:
            async with asyncio.timeout(timeout):
                await settled.wait()
        except TimeoutError:
            self._unanswered[device.ip] = 0  # its answers were lost: count afresh
            raise

    def _found(self, device: Any, is_new: bool) -> bool:
        device.set_update_callback(self._answered)
        awaited = self._awaited.pop(device.ip, None)
        if awaited is not None and not awaited.done():
            awaited.set_result(device)
        return True  # keep it

    def _answered(self, device: Any) -> None:
        left = self._unanswered[device.ip] = max(self._unanswered.get(device.ip, 0) - 1, 0)
        if left == 0 and device.ip in self._settled:
            self._settled[device.ip].set()


def _stop_listener(listener: Listener) -> Awaitable[None]:
    return listener.stop()


LISTENERS: SharedHosts[int, Listener] = SharedHosts(_stop_listener)  # listen port -> its listener


async def listen(ports: Ports) -> Listener:
    """The running listener on `ports.listen`, shared with the other lamps on it."""
    listener = LISTENERS.acquire(ports.listen, lambda: Listener(ports))
    if listener.ports != ports:
        await release(listener)
        raise DriverError(f"another Govee lamp listens on UDP port {ports.listen} with other scan or command ports")
    try:
        await listener.start()
    except OSError as exc:
        await release(listener)
        raise DriverError(f"cannot listen on UDP port {ports.listen}: {exc.strerror or exc}") from None
    return listener


async def release(listener: Listener) -> None:
    """One lamp less on the listener; the last one closes it."""
    await LISTENERS.release(listener.ports.listen)


class GoveeDriver(Driver):
    scheme = "govee"
    min_interval = MESSAGES_PER_CHANGE / MESSAGES_PER_SECOND

    def __init__(self, url: LampUrl, ports: Ports, timeout: float) -> None:
        super().__init__(url)
        self._ports = ports
        self._timeout = timeout
        self._limit = RateLimit(MESSAGES_PER_SECOND)
        self._readings: Readings[Look] = Readings()
        self._listener: Listener | None = None

    @classmethod
    def from_url(cls, url: LampUrl) -> GoveeDriver:
        require(url, "the light's IP address", url.host, EXAMPLE)
        if url.port is not None or url.path not in ("", "/") or url.user or url.password:
            raise LampUrlError(url.text(), f"takes only the light's IP address: {EXAMPLE} (Govee fixes its ports)")
        check_options(url, {TIMEOUT, *PORT_OPTIONS})
        try:
            ipaddress.IPv4Address(url.host)
        except ValueError:
            raise LampUrlError(url.text(), "needs the light's IPv4 address (a Govee light is known by the address "
                                           f"it answers from), e.g. {EXAMPLE}") from None
        ports = Ports(*(_port_option(url, name, default) for name, default in PORT_OPTIONS.items()))
        return cls(url, ports, timeout_option(url, DEFAULT_TIMEOUT))

    async def apply(self, state: LampState, showing: Signal | None = None) -> None:
        look = self._readings.native(state) or _look(state)
        _, device = await self._device()
        await self._limit.wait()
        if look.kelvin:
            await device.set_temperature(look.kelvin)
        else:
            await device.set_rgb_color(*look.rgb)
        await self._limit.wait()
        await device.set_brightness(look.brightness)
        await self._limit.wait()
        await (device.turn_on() if look.on else device.turn_off())

    async def read_state(self) -> LampState:
        listener, device = await self._device()
        await self._limit.wait()
        try:
            await listener.status(device, self._timeout)
        except TimeoutError:
            raise DeviceOffline(f"{self.url()} did not answer devStatus within {self._timeout:g} s") from None
        red, green, blue = device.rgb_color
        look = Look(bool(device.on), (red, green, blue), int(device.temperature_color), int(device.brightness))
        return self._readings.remember(_lamp_state(look), look)

    async def close(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            await release(listener)

    async def _device(self) -> tuple[Listener, Any]:
        """The listener and the light's govee-local-api device, found by a scan on first use."""
        if self._listener is None:
            self._listener = await listen(self._ports)
        try:
            return self._listener, await self._listener.find(self.lamp_url.host, self._timeout)
        except TimeoutError:
            raise DeviceOffline(f"{self.url()} did not answer a scan within {self._timeout:g} s") from None


def _port_option(url: LampUrl, name: str, default: int) -> int:
    text = url.param(name)
    if not text:
        return default
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise LampUrlError(url.text(), f"{name} must be a port number from 1 to 65535, not {text!r}")
    return int(text)


def _look(state: LampState) -> Look:
    """The look that shows `state`: its colour at full value, the value folded into the brightness."""
    hue, saturation, value = to_hsv(state.color)
    brightness = min(max(round(value * state.brightness), BRIGHTNESS_MIN), 100)
    return Look(state.on, to_rgb(from_hsv(hue, saturation)), 0, brightness)


def _lamp_state(look: Look) -> LampState:
    """A look as a LampState; a white of a colour temperature is white (its kelvin is kept natively)."""
    color = "#ffffff" if look.kelvin else to_hex(look.rgb)
    return LampState(on=look.on, color=color, brightness=look.brightness)
