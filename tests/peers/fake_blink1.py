"""A fake blink(1) at the USB HID boundary: a `hid` module whose device answers feature reports like the firmware.

The blink1 library reaches the device only through the `hid` module (cython-hidapi):
`hid.enumerate(vid, pid)`, `hid.device(...).open(vid, pid, serial)`, `send_feature_report`,
`get_feature_report` and `close`. `FakeUsb.installed()` puts a stand-in for that module in
`sys.modules` and in the library (which holds its own reference once imported), so the
real library runs unchanged against `FakeBlink1`. That interprets the reports as the mk2
firmware does (todbot/blink1: docs/blink1-hid-commands.md, hardware/firmware_mk2/main.c);
a report is 9 bytes, {0x01, command, six arguments, 0}:

    'c' fade to RGB over a time (stops a playing pattern)   'n' set RGB now (stops it too)
    'r' read an LED's current RGB      'v' firmware version     'S' play state
    'P'/'R' write/read a pattern line in RAM ('l' picks the LED that 'P' stores)
    'p' play lines start..end in a loop, N times or forever (0), or stop

The fake keeps its own time (time.monotonic): fades and pattern steps are worked out when
someone looks, so a test may sample the colour as often as it likes. `unplug()` makes every
open handle fail as hidapi does (writes return -1, reads raise OSError) and hides the device
from `enumerate`; `plug()` brings it back as freshly powered: dark, not playing, and with the
pattern RAM empty (the flash pattern is not modelled). `locked` lists it but refuses to open
it, as Linux does without a udev rule.

    usb = FakeUsb(FakeBlink1("2000ABCD"))
    with usb.installed():
        ...  # blink1.Blink1() now talks to the fake
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
import types
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import blink1.blink1 as library

RGB = tuple[int, int, int]
BLACK: RGB = (0, 0, 0)
VENDOR_ID = 0x27B8
PRODUCT_ID = 0x01ED
REPORT_ID = 0x01
REPORT_SIZE = 9
TICK = 0.01  # seconds: the firmware counts fade and step times in 10 ms ticks
PATTERN_MAX = 32  # pattern lines in RAM
LED_COUNT = 2
COLOR_COMMANDS = "cn"


@dataclass(frozen=True)
class Report:
    """One feature report the device received."""

    at: float  # time.monotonic()
    data: bytes

    @property
    def command(self) -> str:
        return chr(self.data[1])


@dataclass(frozen=True)
class PatternLine:
    color: RGB
    ticks: int
    ledn: int


@dataclass(frozen=True)
class Fade:
    """An LED moving from `start` to `dest` over `seconds` from `begin` (linear, as the firmware's fader)."""

    start: RGB
    dest: RGB
    begin: float
    seconds: float

    def at(self, now: float) -> RGB:
        if self.seconds <= 0 or now >= self.begin + self.seconds:
            return self.dest
        share = max(0.0, (now - self.begin) / self.seconds)
        red, green, blue = (round(s + (d - s) * share) for s, d in zip(self.start, self.dest, strict=True))
        return red, green, blue


STILL_DARK = Fade(BLACK, BLACK, 0.0, 0.0)
EMPTY_LINE = PatternLine(BLACK, 0, 0)


class FakeBlink1:
    """The firmware's state machine: each LED's fade, the pattern RAM and the player."""

    def __init__(self, serial: str = "2000ABCD", version: str = "25") -> None:
        self.serial = serial
        self.version = version  # two ASCII digits; the library reads "25" as firmware 205 (mk2)
        self.reports: list[Report] = []
        self.plugged = True
        self.locked = False
        self.power_ups = 0  # handles opened before the latest power-up are dead
        self._lock = threading.RLock()
        self._power_up()

    # ---- what a test sees and does ---------------------------------------------------------

    def colors(self) -> tuple[RGB, RGB]:
        """What LED A and LED B show now."""
        with self._lock:
            now = self._advance()
            return self._fades[0].at(now), self._fades[1].at(now)

    def playing(self) -> bool:
        with self._lock:
            self._advance()
            return bool(self._playing)

    def set_colors(self, top: RGB, bottom: RGB) -> None:
        """What someone else (blink1-tool) left the LEDs showing."""
        with self._lock:
            now = self._advance()
            self._fades = [Fade(top, top, now, 0.0), Fade(bottom, bottom, now, 0.0)]

    def color_commands(self) -> list[Report]:
        """The reports that set a colour ('c', 'n')."""
        with self._lock:
            return [r for r in self.reports if r.command in COLOR_COMMANDS]

    def unplug(self) -> None:
        with self._lock:
            self.plugged = False

    def plug(self) -> None:
        with self._lock:
            self.plugged = True
            self._power_up()

    # ---- the USB side -----------------------------------------------------------------------

    def receive(self, data: bytes) -> int:
        """A SET_REPORT (feature) arriving: hidapi's return value, the bytes written or -1."""
        with self._lock:
            if not self.plugged or len(data) < REPORT_SIZE - 1 or data[0] != REPORT_ID:
                return -1
            self.reports.append(Report(time.monotonic(), bytes(data)))
            self._handle(bytes(data[:8]), self._advance())
            return len(data)

    def answer(self) -> list[int]:
        """A GET_REPORT (feature): the report id and the firmware's reply buffer."""
        with self._lock:
            return [*self._reply, 0]

    # ---- the firmware -----------------------------------------------------------------------

    def _power_up(self) -> None:
        self._fades = [STILL_DARK] * LED_COUNT
        self._pattern = [EMPTY_LINE] * PATTERN_MAX
        self._playing = 0
        self._play_start, self._play_end, self._play_count, self._play_pos = 0, PATTERN_MAX, 0, 0
        self._next_line_at = 0.0
        self._pattern_ledn = 0
        self._reply = [REPORT_ID, 0, 0, 0, 0, 0, 0, 0]
        self.power_ups += 1

    def _handle(self, msg: bytes, now: float) -> None:
        self._reply = list(msg)  # the firmware answers with the request, edited by the command
        command, (a, b, c, d, e, f) = chr(msg[1]), msg[2:8]
        if command == "c":
            self._playing = 0
            self._fade_to((a, b, c), (d << 8 | e) * TICK, f, now)
        elif command == "n":
            self._playing = 0
            self._fade_to((a, b, c), 0.0, f, now)
        elif command == "r":
            led = f - 1 if f > 0 else 0
            color = self._fades[led].at(now) if led < LED_COUNT else BLACK
            self._reply[2:8] = [*color, 0, 0, led]
        elif command == "p":
            self._play(a, b, c, d, now)
        elif command == "S":
            self._reply[2:8] = [self._playing, self._play_start, self._play_end, self._play_count, self._play_pos, 0]
        elif command == "P":
            self._pattern[f if f < PATTERN_MAX else 0] = PatternLine((a, b, c), d << 8 | e, self._pattern_ledn)
        elif command == "R":
            line = self._pattern[f if f < PATTERN_MAX else 0]
            self._reply[2:8] = [*line.color, line.ticks >> 8, line.ticks & 0xFF, line.ledn]
        elif command == "l":
            self._pattern_ledn = a
        elif command == "v":
            self._reply[3:5] = [ord(self.version[0]), ord(self.version[1])]

    def _fade_to(self, dest: RGB, seconds: float, ledn: int, now: float) -> None:
        leds = range(LED_COUNT) if ledn == 0 else [ledn - 1] if ledn <= LED_COUNT else []
        for led in leds:
            self._fades[led] = Fade(self._fades[led].at(now), dest, now, seconds)

    def _play(self, on: int, start: int, end: int, count: int, now: float) -> None:
        self._playing, self._play_start, self._play_count = on, start, count
        self._play_end = PATTERN_MAX if end == 0 or end > PATTERN_MAX else end + 1
        self._play_pos = start
        self._next_line_at = now

    def _advance(self) -> float:
        """Play the pattern lines that became due since the last look; the current time."""
        now = time.monotonic()
        steps_in_no_time = 0
        while self._playing and self._next_line_at <= now and steps_in_no_time <= PATTERN_MAX:
            line = self._pattern[self._play_pos]
            if line.ticks or line.color != BLACK:  # the firmware skips empty lines
                self._fade_to(line.color, line.ticks * TICK, line.ledn, self._next_line_at)
            self._next_line(line)
            steps_in_no_time = 0 if line.ticks else steps_in_no_time + 1
        return now

    def _next_line(self, line: PatternLine) -> None:
        self._play_pos += 1
        if self._play_pos == self._play_end:
            self._play_pos = self._play_start
            self._play_count = (self._play_count - 1) & 0xFF
            if self._play_count == 0:
                self._playing = 0
            elif self._play_count == 0xFF:  # it was 0: forever
                self._play_count = 0
        self._next_line_at += line.ticks * TICK


class FakeHidDevice:
    """`hid.device`: a handle on one device, failing the way cython-hidapi does."""

    def __init__(self, usb: FakeUsb, *_args: Any, **_kwargs: Any) -> None:
        self._usb = usb
        self._blink: FakeBlink1 | None = None
        self._power_ups = 0

    def open(self, vendor_id: int = 0, product_id: int = 0, serial_number: str | None = None) -> None:
        found = self._usb.find(vendor_id, product_id, serial_number)
        if found is None or found.locked:
            raise OSError("open failed")
        self._blink, self._power_ups = found, found.power_ups

    def open_path(self, path: bytes) -> None:
        found = self._usb.at_path(path)
        if found is None or found.locked:
            raise OSError("open failed")
        self._blink, self._power_ups = found, found.power_ups

    def close(self) -> None:
        self._blink = None

    def send_feature_report(self, buff: list[int] | bytes) -> int:
        blink = self._opened()
        return blink.receive(bytes(buff)) if self._alive(blink) else -1

    def get_feature_report(self, report_num: int, max_length: int) -> list[int]:
        blink = self._opened()
        if not self._alive(blink):
            raise OSError("read error")
        return blink.answer()[:max_length]

    def get_serial_number_string(self) -> str:
        return self._opened().serial

    def _opened(self) -> FakeBlink1:
        if self._blink is None:
            raise ValueError("not open")
        return self._blink

    def _alive(self, blink: FakeBlink1) -> bool:
        return blink.plugged and blink.power_ups == self._power_ups


class FakeUsb:
    """The USB bus: the blink(1)s on it, reached through a fake `hid` module."""

    def __init__(self, *devices: FakeBlink1) -> None:
        self.devices = list(devices)
        self.module = types.ModuleType("hid", "A fake cython-hidapi, for tests (tests/peers/fake_blink1.py).")
        self.module.enumerate = self.enumerate  # type: ignore[attr-defined]
        self.module.device = lambda *args, **kwargs: FakeHidDevice(self, *args, **kwargs)  # type: ignore[attr-defined]
        self.module.__version__ = "0.15.0"  # type: ignore[attr-defined]

    def enumerate(self, vendor_id: int = 0, product_id: int = 0) -> list[dict[str, Any]]:
        return [_info(number, blink) for number, blink in enumerate(self.devices)
                if blink.plugged and vendor_id in (0, VENDOR_ID) and product_id in (0, PRODUCT_ID)]

    def find(self, vendor_id: int, product_id: int, serial: str | None) -> FakeBlink1 | None:
        if (vendor_id, product_id) != (VENDOR_ID, PRODUCT_ID):
            return None
        return next((blink for blink in self.devices if blink.plugged and serial in (None, blink.serial)), None)

    def at_path(self, path: bytes) -> FakeBlink1 | None:
        return next((blink for number, blink in enumerate(self.devices)
                     if blink.plugged and _path(number) == path), None)

    @contextlib.contextmanager
    def installed(self) -> Iterator[FakeUsb]:
        """Make `import hid` (and the already imported blink1 library) reach this bus."""
        saved_module, saved_library_hid = sys.modules.get("hid"), library.hid
        sys.modules["hid"] = self.module
        library.hid = self.module  # type: ignore[assignment]
        try:
            yield self
        finally:
            library.hid = saved_library_hid
            if saved_module is None:
                sys.modules.pop("hid", None)
            else:
                sys.modules["hid"] = saved_module


def _path(number: int) -> bytes:
    return f"/dev/hidraw{number}".encode()


def _info(number: int, blink: FakeBlink1) -> dict[str, Any]:
    """One entry of `hid.enumerate`, with the fields cython-hidapi gives."""
    return {"path": _path(number), "vendor_id": VENDOR_ID, "product_id": PRODUCT_ID, "serial_number": blink.serial,
            "release_number": 0x0002, "manufacturer_string": "ThingM", "product_string": "blink(1) mk2",
            "usage_page": 0xFF00, "usage": 0x0001, "interface_number": 0}
