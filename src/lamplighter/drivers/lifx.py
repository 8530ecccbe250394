"""`lifx://IP[:PORT]?serial=d073d5xxxxxx`: a LIFX bulb over its LAN protocol, through lifx-async.

Colours are sent as HSBK with a zero duration. To turn on, the colour goes first and the
power second (so the bulb never flashes its old colour); to turn off, the other way round,
so it keeps the restored colour for the next time someone switches it on.

Blink and pulse are the bulb's own waveforms, with `transient` set: blink is a square
PULSE to dark and back (1 s), pulse a SINE down to 35 % and back (2 s). They repeat until
the next state replaces them (a new SetColor cancels a waveform).

Restore is exact: the HSBK (kelvin included) and power read back are what is sent back.
Without `serial` the bulb is asked for it on first use. At most 20 messages a second go to
one bulb, as LIFX asks of LAN clients.

    lifx://192.168.1.40?serial=d073d5123456       lifx://192.168.1.40:56700?timeout=5
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lifx import HSBK, LifxError, LifxTimeoutError, Light, LightWaveform
from lifx.network.address import validate_address, validate_port

from lamplighter.drivers.base import Driver, LampUrl
from lamplighter.drivers.color import from_hsv, percent, to_hsv
from lamplighter.drivers.native import Readings
from lamplighter.drivers.options import TIMEOUT, check_options, require, timeout_option
from lamplighter.drivers.pacing import RateLimit
from lamplighter.errors import DeviceOffline, DriverError, LampUrlError
from lamplighter.model import Effect, LampState, Signal

DEFAULT_PORT = 56700
DEFAULT_TIMEOUT = 2.0
MESSAGES_PER_SECOND = 20
NEUTRAL_KELVIN = 3500
SERIAL = "serial"
SERIAL_PATTERN = re.compile(r"[0-9a-f]{12}")
PULSE_LOW = 0.35  # the dim end of a pulse, as on the lamp page
WAVEFORM_CYCLES = 65535.0  # about 18 hours of blinking: until the next state replaces it


@dataclass(frozen=True)
class Waveform:
    """A LIFX waveform that draws one of our effects: shape, period and the colour it swings to."""

    shape: LightWaveform
    period: float
    low: float  # the target brightness, as a fraction of the base colour's


WAVEFORMS = {Effect.BLINK: Waveform(LightWaveform.PULSE, 1.0, 0.0),
             Effect.PULSE: Waveform(LightWaveform.SINE, 2.0, PULSE_LOW)}


@dataclass(frozen=True)
class Look:
    """What a bulb shows, in its own terms."""

    color: HSBK
    on: bool


class LifxDriver(Driver):
    scheme = "lifx"
    min_interval = 2 / MESSAGES_PER_SECOND  # an apply is two messages (three with an effect): see RateLimit
    effects = frozenset(Effect)

    def __init__(self, url: LampUrl, serial: str | None, timeout: float) -> None:
        super().__init__(url)
        self._serial = serial
        self._timeout = timeout
        self._limit = RateLimit(MESSAGES_PER_SECOND)
        self._readings: Readings[Look] = Readings()
        self._bulb: Light | None = None

    @classmethod
    def from_url(cls, url: LampUrl) -> LifxDriver:
        require(url, "the bulb's IP address", url.host, "lifx://192.168.1.40?serial=d073d5123456")
        check_options(url, {SERIAL, TIMEOUT})
        try:
            validate_address(url.host)
            validate_port(url.port or DEFAULT_PORT)
        except ValueError as exc:
            raise LampUrlError(url.text(), f"needs the bulb's IP address and port: {exc}") from None
        serial = url.param(SERIAL).lower().replace(":", "") or None
        if serial is not None and not SERIAL_PATTERN.fullmatch(serial):
            raise LampUrlError(url.text(), "serial must be 12 hex digits, e.g. d073d5123456")
        return cls(url, serial, timeout_option(url, DEFAULT_TIMEOUT))

    async def apply(self, state: LampState, showing: Signal | None = None) -> None:
        look = self._readings.native(state) or Look(_hsbk(state.color, state.brightness), state.on)
        bulb = await self._connect()
        try:
            await self._show(bulb, look, WAVEFORMS.get(state.effect) if state.on else None)
        except LifxError as exc:
            raise self._failure(exc) from None

    async def read_state(self) -> LampState:
        bulb = await self._connect()
        try:
            await self._limit.wait()
            color, power, _label = await bulb.get_color()
        except LifxError as exc:
            raise self._failure(exc) from None
        shown = LampState(on=power > 0, color=from_hsv(color.hue, color.saturation),
                          brightness=percent(color.brightness, 1))
        return self._readings.remember(shown, Look(color, shown.on))

    async def close(self) -> None:
        if self._bulb is not None:
            await self._bulb.close()

    async def _show(self, bulb: Light, look: Look, waveform: Waveform | None) -> None:
        if not look.on:
            await self._limit.wait()
            await bulb.set_power(False, duration=0)
        await self._limit.wait()
        await bulb.set_color(look.color, duration=0)
        if waveform is not None:
            await self._limit.wait()
            target = look.color.with_brightness(look.color.brightness * waveform.low)
            await bulb.set_waveform(target, waveform.period, WAVEFORM_CYCLES, waveform.shape, transient=True)
        if look.on:
            await self._limit.wait()
            await bulb.set_power(True, duration=0)

    async def _connect(self) -> Light:
        """The bulb's handle; without a serial in the URL, ask the bulb for it (once)."""
        if self._bulb is None:
            host, port = self.lamp_url.host, self.lamp_url.port or DEFAULT_PORT
            if self._serial is None:
                await self._limit.wait()
                try:
                    self._bulb = await Light.from_ip(host, port=port, timeout=self._timeout)
                except LifxError as exc:
                    raise self._failure(exc) from None
            else:
                self._bulb = Light(self._serial, host, port=port, timeout=self._timeout)
        return self._bulb

    def _failure(self, exc: LifxError) -> DriverError:
        if isinstance(exc, LifxTimeoutError):
            return DeviceOffline(f"{self.url()} did not answer within {self._timeout:g} s")
        return DriverError(f"{self.url()} refused the command ({type(exc).__name__})")


def _hsbk(color: str, brightness: int) -> HSBK:
    hue, saturation, value = to_hsv(color)
    return HSBK(hue=hue, saturation=saturation, brightness=value * brightness / 100, kelvin=NEUTRAL_KELVIN)
