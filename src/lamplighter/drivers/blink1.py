"""`blink1://[SERIAL]`: a blink(1) USB LED through the `blink1` library (USB HID feature reports).

Without a serial the first blink(1) found is used; `blink1://2000ABCD` picks one by the
serial that `blink1-tool --list` shows (any case). A colour is one "fade to RGB" command
with a fade of 0, gamma-corrected by the library as blink1-tool does (so `#ff0000` is full
red) and scaled by the brightness. A blink(1) has no power switch: off is black, so a lamp
that was off is restored to dark.

Blink and pulse are patterns written into the device's RAM and played in a loop by its own
firmware: blink is the colour for 500 ms and dark for 500 ms (10 ms edges), pulse fades down
to 35 % and back over 2 s. Any colour command stops a playing pattern (the firmware stops
playing on "fade to RGB"), so the next state replaces the effect. The pattern the user saved
in flash is not touched: RAM is reloaded from it at the next power-up.

Restore is exact: both LEDs (top and bottom) are read back as the device reports them ("read
RGB", mk2 and newer) and written back as read; a pattern someone else left playing comes back
as the colour it showed at that moment. A mk1 cannot report its colour and is refused.
At most 20 colour changes go to the device a second. An unplugged device is DeviceOffline;
it is opened again on the next call, so plugging it back in brings the lamp back.
The library blocks (USB I/O, and a 50 ms pause when asking the firmware version), so every
call runs in a worker thread, one at a time.

    blink1://            blink1://2000ABCD
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from blink1.blink1 import PATTERN_LINES_MK2, Blink1, Blink1ConnectionFailed

from lamplighter.drivers.base import Driver, LampUrl
from lamplighter.drivers.color import percent, to_hex, to_rgb
from lamplighter.drivers.native import Readings
from lamplighter.drivers.options import check_options
from lamplighter.drivers.pacing import RateLimit
from lamplighter.errors import DeviceOffline, DriverError, LampUrlError
from lamplighter.model import Effect, LampState, Signal

T = TypeVar("T")
RGB = tuple[int, int, int]
Leds = tuple[RGB, RGB]  # LED A (top) and LED B (bottom), as the device reports them

EXAMPLE = "blink1://2000ABCD"
SERIAL_PATTERN = re.compile(r"[0-9a-fA-F]{8}")
CHANGES_PER_SECOND = 20
BLACK: RGB = (0, 0, 0)
ALL_LEDS = 0
LEDS = (1, 2)  # how "read RGB" and "fade to RGB" number LED A and LED B
MK2_FIRST_VERSION = 200  # mk1 firmware is 1xx and has no "read RGB"
PULSE_LOW = 0.35  # the dim end of a pulse, as on the lamp page
UDEV_HINT = "give this user access to it (a udev rule for USB 27b8:01ed, as blink1-tool's docs show)"


@dataclass(frozen=True)
class Step:
    """One line of a pattern: fade to `level` times the colour over `ms` (the firmware then moves on)."""

    level: float
    ms: int


PATTERNS = {
    Effect.BLINK: (Step(1.0, 10), Step(1.0, 490), Step(0.0, 10), Step(0.0, 490)),
    Effect.PULSE: (Step(PULSE_LOW, 1000), Step(1.0, 1000)),
}


@dataclass(frozen=True)
class Reading:
    """What the device reported: whether a pattern plays, each LED's raw colour, the brighter one ungamma'd."""

    playing: bool
    leds: Leds
    shown: RGB


class Blink1Driver(Driver):
    scheme = "blink1"
    min_interval = 1 / CHANGES_PER_SECOND
    effects = frozenset(Effect)

    def __init__(self, url: LampUrl, serial: str | None) -> None:
        super().__init__(url)
        self._serial = serial
        self._device: Blink1 | None = None
        self._lock = asyncio.Lock()
        self._limit = RateLimit(CHANGES_PER_SECOND)
        self._readings: Readings[Leds] = Readings()
        self._effect: LampState | None = None  # the effect state whose pattern we started

    @classmethod
    def from_url(cls, url: LampUrl) -> Blink1Driver:
        if url.path not in ("", "/") or url.user or url.password or url.port is not None:
            raise LampUrlError(url.text(), f"takes only a serial number: blink1://[SERIAL], e.g. {EXAMPLE}")
        check_options(url, ())
        if url.host and not SERIAL_PATTERN.fullmatch(url.host):
            raise LampUrlError(url.text(), f"the serial number is 8 hex digits, e.g. {EXAMPLE} "
                                           "(blink1-tool --list shows it)")
        return cls(url, url.host or None)

    async def apply(self, state: LampState, showing: Signal | None = None) -> None:
        native = self._readings.native(state)
        await self._limit.wait()
        if native is not None:
            await self._call(lambda device: _restore(device, native))
            self._effect = None
        else:
            await self._call(lambda device: _show(device, state))
            self._effect = state if state.on and state.effect in PATTERNS else None

    async def read_state(self) -> LampState:
        reading = await self._call(_read)
        if reading.playing and self._effect is not None:
            return self._effect  # our pattern still plays: its colour now is only a moment of it
        self._effect = None
        return self._readings.remember(_lamp_state(reading.shown), reading.leds)

    async def close(self) -> None:
        async with self._lock:
            await asyncio.to_thread(self._forget)

    async def _call(self, action: Callable[[Blink1], T]) -> T:
        """Run `action` on the device in a worker thread, one call at a time, opening it first if needed."""
        async with self._lock:
            return await asyncio.to_thread(self._run, action)

    def _run(self, action: Callable[[Blink1], T]) -> T:
        device = self._device or self._open()
        try:
            return action(device)
        except (Blink1ConnectionFailed, OSError) as exc:
            self._forget()
            raise DeviceOffline(f"{self.url()} stopped answering (unplugged?): {exc}") from None

    def _open(self) -> Blink1:
        serial = self._plugged_serial()
        try:
            device = Blink1(serial_number=serial, pattern_lines=PATTERN_LINES_MK2)
        except Blink1ConnectionFailed:
            raise DriverError(f"{self.url()}: blink(1) {serial} is plugged in but cannot be opened: "
                              f"{UDEV_HINT}") from None
        try:
            version = int(device.get_version())
        except (Blink1ConnectionFailed, OSError) as exc:
            device.close()
            raise DeviceOffline(f"{self.url()}: blink(1) {serial} did not say its firmware version: {exc}") from None
        if version < MK2_FIRST_VERSION:
            device.close()
            raise DriverError(f"{self.url()}: blink(1) {serial} is a mk1 (firmware {version}), which cannot "
                              "report its colour for the restore; use a blink(1) mk2 or newer")
        self._device = device
        return device

    def _plugged_serial(self) -> str:
        """The serial of the blink(1) to open, as the device spells it; DeviceOffline if it is not plugged in."""
        found = [serial for serial in Blink1.list() if serial]
        wanted = [s for s in found if self._serial is None or s.lower() == self._serial.lower()]
        if not wanted:
            which = f"with serial {self._serial} " if self._serial else ""
            others = f" (plugged in: {', '.join(found)})" if found else ""
            raise DeviceOffline(f"{self.url()}: no blink(1) {which}is plugged in{others}")
        return wanted[0]

    def _forget(self) -> None:
        device, self._device = self._device, None
        if device is not None:
            with contextlib.suppress(OSError):  # already gone with the USB device
                device.close()


def _show(device: Blink1, state: LampState) -> None:
    """The state's colour at once (which also stops any playing pattern), then its effect's pattern."""
    color = _scaled(state) if state.on else BLACK
    device.fade_to_rgb(0, *color)
    steps = PATTERNS.get(state.effect, ()) if state.on else ()
    for position, step in enumerate(steps):
        device.write_pattern_line(step.ms, tuple(round(c * step.level) for c in color), position)
    if steps:
        device.play(0, len(steps) - 1, 0)  # 0: loop until a colour command stops it


def _restore(device: Blink1, leds: Leds) -> None:
    """Each LED exactly as it was read (raw values: the gamma was applied when they were set)."""
    targets = [(ALL_LEDS, leds[0])] if leds[0] == leds[1] else list(zip(LEDS, leds, strict=True))
    for ledn, (red, green, blue) in targets:
        device.fade_to_rgb_uncorrected(0, red, green, blue, ledn)  # type: ignore[no-untyped-call]


def _read(device: Blink1) -> Reading:
    playing = device.read_play_state().playing
    top, bottom = (_rgb(device.read_rgb(ledn)) for ledn in LEDS)
    brighter = max((top, bottom), key=sum)
    return Reading(playing, (top, bottom), _rgb(device.cc.uncorrect(*brighter)))


def _scaled(state: LampState) -> RGB:
    red, green, blue = (round(c * state.brightness / 100) for c in to_rgb(state.color))
    return red, green, blue


def _lamp_state(rgb: RGB) -> LampState:
    """A colour the device shows as a LampState: the colour at full value, and its brightness apart."""
    value = max(rgb)
    if not value:
        return LampState(on=False)
    red, green, blue = (round(c * 255 / value) for c in rgb)
    return LampState(on=True, color=to_hex((red, green, blue)), brightness=max(1, percent(value, 255)))


def _rgb(values: Sequence[Any]) -> RGB:
    return int(values[0]), int(values[1]), int(values[2])
