"""`kasa://HOST[:PORT]` or `kasa://USER:PASSWORD@HOST`: a TP-Link Kasa plug, switch or bulb, through python-kasa.

python-kasa is GPL-licensed, so it is an optional extra: `pip install 'lamplighter[kasa]'`.

Without credentials the device is reached over the legacy Kasa protocol (XOR-"encrypted"
JSON over TCP, port 9999 unless the URL names another). Newer Kasa and Tapo devices
(KLAP/AES over HTTP) ask for the owner's TP-Link account: with `USER:PASSWORD@` in the URL
the device is found by python-kasa's discovery at that address and the credentials are
handed to it. The password is never printed.

A plug or switch powers whatever is plugged into it, a lamp or a siren: it is switched on
for any signal (blink and pulse frames included: a relay is not clicked twice a second)
and back to its own on/off when the signals end. A bulb shows the colour (hue and
saturation, the colour's own value folded into the brightness) with a zero transition;
Kasa bulbs have no blink or pulse of their own, so the lamp controller draws them as solid
frames. Restore is exact: hue, saturation, colour temperature (kelvin) and brightness read
back are sent back; a bulb that was off is given that look and then switched off, because
a Kasa bulb switches on in its last look, which must not be the alert's.

Kasa publishes no rate limit. One request is in flight at a time (python-kasa's lock) and
at most five requests a second go to a device (a read is two): the emulated blink needs two.

    kasa://192.168.1.50       kasa://192.168.1.50:9999?timeout=5       kasa://me%40example.com:PASSWORD@192.168.1.51
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TypeVar
from urllib.parse import unquote

from kasa import (
    AuthenticationError,
    Credentials,
    Device,
    DeviceConfig,
    Discover,
    IotProtocol,
    KasaException,
    LightState,
    Module,
    UnsupportedDeviceError,
)
from kasa.interfaces import Light

from lamplighter.drivers.base import Driver, LampUrl
from lamplighter.drivers.color import from_hsv, to_hsv
from lamplighter.drivers.native import Readings
from lamplighter.drivers.options import TIMEOUT, check_options, require, timeout_option
from lamplighter.drivers.pacing import RateLimit
from lamplighter.errors import DeviceOffline, DriverError, LampUrlError
from lamplighter.model import LampState, Signal

DEFAULT_TIMEOUT = 5.0  # python-kasa's own
REQUESTS_PER_SECOND = 5
READ_REQUESTS = 2  # python-kasa's update() of a legacy device: its info, then its modules' state
CONNECT_REQUESTS = 3  # the info that says what the device is, then update()
EXAMPLE = "kasa://192.168.1.50"
NEEDS_ACCOUNT = "newer Kasa and Tapo devices need kasa://USER:PASSWORD@HOST"

T = TypeVar("T")


class KasaDriver(Driver):
    scheme = "kasa"
    min_interval = 1 / REQUESTS_PER_SECOND

    def __init__(self, url: LampUrl, timeout: float) -> None:
        super().__init__(url)
        self._timeout = timeout
        self._limit = RateLimit(REQUESTS_PER_SECOND)
        self._device: Device | None = None
        self._readings: Readings[LightState] = Readings()  # a bulb's look, with `light_on`
        self._relay_on: bool | None = None  # a plug's relay, as last read or set
        self._told: tuple[LampState, bool] | None = None  # what a plug was last told to show, and its relay then

    @classmethod
    def from_url(cls, url: LampUrl) -> KasaDriver:
        require(url, "the device's address", url.host, EXAMPLE)
        if url.path not in ("", "/"):
            raise LampUrlError(url.text(), f"takes only an address: kasa://[USER:PASSWORD@]HOST[:PORT], e.g. {EXAMPLE}")
        if bool(url.user) != bool(url.password):
            raise LampUrlError(url.text(), "needs both the TP-Link account's user and password: "
                                           "kasa://USER:PASSWORD@HOST")
        check_options(url, {TIMEOUT})
        return cls(url, timeout_option(url, DEFAULT_TIMEOUT))

    async def apply(self, state: LampState, showing: Signal | None = None) -> None:
        device = await self._connect()
        light = device.modules.get(Module.Light)
        if light is None:
            relay = state.on or showing is not None
            await self._switch(device, relay)
            self._told = (state, relay)
        else:
            await self._show(light, state, 0 if isinstance(device.protocol, IotProtocol) else None)

    async def read_state(self) -> LampState:
        device = await self._connect()
        await self._call(device.update, READ_REQUESTS)
        light = device.modules.get(Module.Light)
        if light is None:
            return self._relay_state(device.is_on)
        look = _look(light, device.is_on)
        return self._readings.remember(_lamp_state(look), look)

    async def close(self) -> None:
        if self._device is not None:
            await self._device.disconnect()
            self._device = None

    async def _connect(self) -> Device:
        """The device, connected on first use (found by discovery when the URL holds credentials)."""
        if self._device is None:
            connect = self._discover if self.lamp_url.password else self._connect_legacy
            self._device = await self._call(connect, CONNECT_REQUESTS)
        return self._device

    async def _connect_legacy(self) -> Device:
        url = self.lamp_url
        return await Device.connect(config=DeviceConfig(url.host, timeout=math.ceil(self._timeout),
                                                        port_override=url.port))

    async def _discover(self) -> Device:
        url, seconds = self.lamp_url, math.ceil(self._timeout)
        device = await Discover.discover_single(url.host, port=url.port, timeout=seconds, discovery_timeout=seconds,
                                                credentials=Credentials(unquote(url.user), unquote(url.password)))
        if device is None:
            raise DriverError(f"{self.url()} is not a device python-kasa supports")
        await device.update()
        return device

    async def _switch(self, device: Device, on: bool) -> None:
        """Set a plug's relay, unless it is already there."""
        if self._relay_on is not on:
            self._relay_on = None  # unknown until the device confirms
            await self._call(device.turn_on if on else device.turn_off)
            self._relay_on = on

    def _relay_state(self, on: bool) -> LampState:
        """A plug shows what it was last told while its relay is where that put it; else it is just on or off."""
        self._relay_on = on
        if self._told is not None and self._told[1] == on:
            return self._told[0]
        return LampState(on=on)

    async def _show(self, light: Light, state: LampState, transition: int | None) -> None:
        native = self._readings.native(state)
        steps = _light_command(light, state) if native is None else _restoring(native)
        for step in steps:
            step.transition = transition
            await self._call(partial(light.set_state, step))

    async def _call(self, action: Callable[[], Awaitable[T]], requests: int = 1) -> T:
        """One call to the device (of up to `requests` requests) within the rate limit and the timeout,
        its failures as our errors."""
        for _ in range(requests):
            await self._limit.wait()
        try:
            async with asyncio.timeout(self._timeout):
                return await action()
        except TimeoutError:  # python-kasa's TimeoutError is one too
            raise DeviceOffline(f"{self.url()} did not answer within {self._timeout:g} s") from None
        except AuthenticationError:
            raise DriverError(f"{self.url()} refused the TP-Link account's credentials") from None
        except UnsupportedDeviceError:
            raise DriverError(f"{self.url()} is not a device python-kasa supports") from None
        except (KasaException, OSError) as exc:
            raise self._failure(exc) from None

    def _failure(self, exc: Exception) -> DriverError:
        cause = _network_cause(exc)
        if cause is None:
            return DriverError(f"{self.url()} refused the command ({type(exc).__name__})")
        hint = f"; {NEEDS_ACCOUNT}" if isinstance(cause, ConnectionRefusedError) and not self.lamp_url.password else ""
        return DeviceOffline(f"cannot reach {self.url()} ({type(cause).__name__}{hint})")


def _network_cause(exc: BaseException | None) -> BaseException | None:
    """The connection failure behind a python-kasa error (refused, reset, closed mid-answer), if any."""
    while exc is not None:
        if isinstance(exc, (OSError, EOFError)):
            return exc
        exc = exc.__cause__
    return None


def _look(light: Light, on: bool) -> LightState:
    """What a bulb shows, in its own terms; a Kasa bulb reports its look while off too."""
    look = LightState(light_on=on)
    if light.has_feature("brightness"):
        look.brightness = light.brightness
    if light.has_feature("hsv"):
        look.hue, look.saturation, _ = light.hsv
    if light.has_feature("color_temp"):
        look.color_temp = light.color_temp  # 0 while showing a colour
    return look


def _lamp_state(look: LightState) -> LampState:
    color = "#ffffff" if look.color_temp or look.hue is None else from_hsv(look.hue, (look.saturation or 0) / 100)
    return LampState(on=bool(look.light_on), color=color, brightness=look.brightness or 100)


def _light_command(light: Light, state: LampState) -> list[LightState]:
    """The one step that shows `state`: the colour at full value, its value folded into the brightness."""
    hue, saturation, value = to_hsv(state.color)
    if not state.on or value == 0:
        return [LightState(light_on=False)]
    step = LightState(light_on=True)
    if light.has_feature("brightness"):
        step.brightness = min(max(round(value * state.brightness), 1), 100)  # 0 would mean off
    if light.has_feature("hsv"):
        step.hue, step.saturation = round(hue) % 360, round(saturation * 100)
        if light.has_feature("color_temp"):
            step.color_temp = 0  # out of white mode
    return [step]


def _restoring(look: LightState) -> list[LightState]:
    """The steps back to `look`: the look itself, then off if the bulb was off."""
    steps = [LightState(light_on=True, brightness=look.brightness, hue=look.hue, saturation=look.saturation,
                        color_temp=look.color_temp)]
    return steps if look.light_on else [*steps, LightState(light_on=False)]
