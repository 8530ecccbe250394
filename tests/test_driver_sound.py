"""`sound://` with the real players (aplay, espeak-ng) on a sound card made of ALSA's own plugins.

ALSA's `null` device swallows audio at once (aplay plays 3 s of it in a few milliseconds), so
there would be no player to see while the siren sounds. The tests' card is ALSA's `file`
plugin over `null`, writing into a FIFO that a thread here reads at the pace of a real card
(22050 16-bit samples a second) or as fast as it comes: a player runs as long as it would on
a speaker, and everything played is on the tape. It is defined in a configuration file that
`ALSA_CONFIG_PATH` adds to the system's, so `aplay -D speaker` finds it.

Needs the Debian packages alsa-utils and espeak-ng; without them these tests fail.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import subprocess
import threading
import time
import wave
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from lamplighter.drivers.registry import build_driver
from lamplighter.drivers.sound import PACKAGES, RATE, SoundDriver, beep_samples
from lamplighter.errors import DeviceOffline, DriverError, LampUrlError
from lamplighter.model import Effect, LampState, Signal, SystemClock, make_event
from lamplighter.service import Service, SignalAction
from tests.peers.lamps import eventually

pytestmark = pytest.mark.real_time  # services and lamps driving real peers on the real clock

SYSTEM_ALSA_CONFIG = "/usr/share/alsa/alsa.conf"
CARD = "speaker"
SIREN = "speaker"  # the siren's name in the configuration
BYTES_PER_SECOND = RATE * 2
CHUNK = 2205 * 2  # 0.1 s of sound
PLAYERS = frozenset(PACKAGES)
OFF = LampState(on=False)


class Speaker:
    """An ALSA device named `speaker` whose output this reads from a FIFO: `tape` is all it was played."""

    def __init__(self, directory: Path, realtime: bool) -> None:
        self.fifo = directory / "speaker.fifo"
        os.mkfifo(self.fifo)
        self.config = directory / "asound.conf"
        self.config.write_text(f'pcm.{CARD} {{\n  type file\n  slave.pcm "null"\n  file "{self.fifo}"\n'
                               '  format "raw"\n}\n')
        self.realtime = realtime
        self.tape = bytearray()
        self.idle = threading.Event()  # no player has the card open, and what they played is all heard
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._listen, name="speaker", daemon=True)
        self._thread.start()

    def heard(self) -> bytes:
        return bytes(self.tape)

    def _listen(self) -> None:
        while not self._stop.is_set():
            self.idle.set()
            with open(self.fifo, "rb", buffering=0) as pipe:  # waits for a player to open the card
                self.idle.clear()
                with contextlib.suppress(OSError):  # EBUSY when more than that is in the pipe already
                    fcntl.fcntl(pipe, fcntl.F_SETPIPE_SZ, 4096)  # a small buffer: the player keeps our pace
                while not self._stop.is_set() and (chunk := pipe.read(CHUNK)):
                    self.tape += chunk
                    if self.realtime:
                        time.sleep(len(chunk) / BYTES_PER_SECOND)

    def stop(self) -> None:
        self._stop.set()
        while self._thread.is_alive():
            with contextlib.suppress(OSError):  # wakes the reader waiting in open(); ENXIO when it is not
                os.close(os.open(self.fifo, os.O_WRONLY | os.O_NONBLOCK))
            self._thread.join(0.05)


@contextlib.contextmanager
def speaker_card(directory: Path, monkeypatch: pytest.MonkeyPatch, realtime: bool = True) -> Iterator[Speaker]:
    directory.mkdir(exist_ok=True)
    speaker = Speaker(directory, realtime)
    monkeypatch.setenv("ALSA_CONFIG_PATH", f"{SYSTEM_ALSA_CONFIG}:{speaker.config}")
    try:
        yield speaker
    finally:
        speaker.stop()


@pytest.fixture
def speaker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Speaker]:
    with speaker_card(tmp_path / "card", monkeypatch) as card:
        yield card


@pytest.fixture
def fast_card(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Speaker]:
    """A card that takes sound as fast as it comes, like ALSA's null, but keeps the tape."""
    with speaker_card(tmp_path / "card", monkeypatch, realtime=False) as card:
        yield card


def players() -> list[str]:
    """The command lines of the players (aplay, espeak-ng) this test process runs now (zombies count)."""
    running = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            text = stat.read_text()
            name, parent = text[text.index("(") + 1:text.rindex(")")], int(text[text.rindex(")") + 2:].split()[1])
            if parent == os.getpid() and name in PLAYERS:
                running.append((stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode())
    return running


def spoken(text: str, directory: Path) -> bytes:
    """The samples espeak-ng makes of `text`, as the card should receive them."""
    path = directory / "expected.wav"
    subprocess.run(["espeak-ng", "-w", str(path), "--stdin"], input=text.encode(), check=True)
    with wave.open(str(path), "rb") as reader:
        return reader.readframes(reader.getnframes())


def signal(title: str = "payments down") -> Signal:
    return Signal(event_id=1, level="911", key="k", title=title, priority=300, look=LampState(on=True, color="#ff0000"),
                  lamps=frozenset(), started_at=0.0, expires_at=None)


def siren_config(url: str) -> str:
    return f"sirens: {{{SIREN}: '{url}'}}\nlevels: {{'911': {{escalate_after: 3s}}}}\n"


async def test_an_escalated_911_sounds_the_siren_and_speaks_its_title_until_it_is_acknowledged(
        speaker: Speaker, service_factory: Callable[..., Service], clock: SystemClock, tmp_path: Path) -> None:
    expected_speech = spoken("911: payments down", tmp_path)
    service = service_factory(siren_config(f"sound://{CARD}?say=title"))
    async with service.running():
        alarm = service.submit(make_event("911", "payments down", received_at=clock.now())).id
        await eventually(lambda: service.lamps[SIREN].actual == OFF)
        assert not players()  # not yet escalated
        await eventually(lambda: any(f"aplay -q -D {CARD} " in p for p in players()))
        await eventually(lambda: expected_speech in speaker.heard())  # the whole title, as espeak-ng says it
        assert service.lamps[SIREN].actual == LampState(on=True, color="#ff0000")
        assert service.acknowledge(alarm, by="alice") is SignalAction.DONE
        await eventually(lambda: not players() and service.lamps[SIREN].actual == OFF)
        await eventually(speaker.idle.is_set)  # the card played out its buffer
        heard = len(speaker.heard())
        await asyncio.sleep(0.3)
        assert len(speaker.heard()) == heard  # silent


async def test_switching_the_siren_off_kills_the_player_before_apply_returns(speaker: Speaker) -> None:
    driver = build_driver(f"sound://{CARD}")
    try:
        await driver.apply(LampState(on=True, effect=Effect.BLINK))  # an effect changes nothing: it sounds
        await eventually(lambda: bool(players()))
        await driver.apply(OFF)
        assert not players()
        assert await driver.read_state() == OFF
    finally:
        await driver.close()


async def test_a_card_that_swallows_sound_at_once_does_not_make_the_siren_spin(fast_card: Speaker) -> None:
    beep = beep_samples(1.0).tobytes()[:8000]  # a round of tone=beep is 1 s: two beeps
    driver = build_driver(f"sound://{CARD}?tone=beep")
    try:
        await driver.apply(LampState(on=True))
        await asyncio.sleep(1.5)
        assert 2 <= fast_card.heard().count(beep) <= 6  # one to three rounds, not hundreds
    finally:
        await driver.close()


async def test_repeat_plays_that_many_rounds_and_the_siren_stays_on_until_switched_off(fast_card: Speaker) -> None:
    beep = beep_samples(1.0).tobytes()[:8000]
    driver = build_driver(f"sound://{CARD}?tone=beep&repeat=2")
    try:
        await driver.apply(LampState(on=True))
        await eventually(lambda: fast_card.heard().count(beep) == 4)
        await asyncio.sleep(1.2)
        assert fast_card.heard().count(beep) == 4
        assert (await driver.read_state()).on  # on (so not started again) until switched off
    finally:
        await driver.close()


async def test_a_device_that_does_not_exist_shows_the_siren_offline_in_aplays_words(
        service_factory: Callable[..., Service]) -> None:
    service = service_factory(siren_config("sound://nosuchdevice?say=title"))
    async with service.running():
        await eventually(lambda: not service.lamps[SIREN].online)
        error = service.lamps[SIREN].error
        assert "ALSA device 'nosuchdevice' cannot play" in error and "Unknown PCM nosuchdevice" in error
        assert "`aplay -L` lists the devices" in error


async def test_a_device_that_fails_when_switched_on_is_offline() -> None:
    driver = build_driver("sound://nosuchdevice")
    with pytest.raises(DeviceOffline, match="Unknown PCM nosuchdevice"):
        await driver.apply(LampState(on=True), signal())
    assert not players()
    await driver.close()


async def test_a_missing_player_names_the_debian_package_to_install(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", str(bin_dir))
    driver = build_driver("sound://null?say=title")
    with pytest.raises(DriverError, match=r"needs aplay, which is not installed: install the Debian package "
                                          r"alsa-utils \(apt-get install alsa-utils\)"):
        await driver.read_state()
    (bin_dir / "aplay").symlink_to("/usr/bin/aplay")
    assert await driver.read_state() == OFF
    with pytest.raises(DriverError, match="needs espeak-ng, which is not installed: install the Debian package espeak"):
        await driver.apply(LampState(on=True), signal())
    await driver.close()


def test_blink_and_pulse_are_declared_native_so_a_siren_is_never_switched_on_and_off_to_emulate_them() -> None:
    assert {Effect.BLINK, Effect.PULSE} <= SoundDriver.effects


@pytest.mark.parametrize("url", [
    "sound://", "sound://null?say=title", "sound://default?tone=beep&volume=0.5&repeat=3",
    "sound://plughw%3A1%2C0?tone=none&say=title", "sound://default?tone=/usr/share/sounds/alsa/Front_Center.wav",
])
def test_sound_urls_print_back_exactly(url: str) -> None:
    driver = build_driver(url)
    assert type(driver).__name__ == "SoundDriver"
    assert driver.url(privacy=False) == driver.url() == url
    assert build_driver(driver.url()).url() == url


@pytest.mark.parametrize(("url", "needle"), [
    ("sound://default/extra", r"takes an ALSA device and options: sound://\[DEVICE\]"),
    ("sound://default?tone=horn", "tone must be siren, beep, none or the absolute path of a .wav"),
    ("sound://default?tone=alarm.wav", "tone must be siren, beep, none or the absolute path of a .wav"),
    ("sound://default?tone=/nonexistent/alarm.wav", "tone /nonexistent/alarm.wav: no such file"),
    ("sound://default?say=body", "say can only be 'title'"),
    ("sound://default?volume=2", "volume must be a number above 0 and at most 1, not '2'"),
    ("sound://default?volume=loud", "volume must be a number above 0 and at most 1"),
    ("sound://default?repeat=0", "repeat must be a number of rounds from 1 to 1000"),
    ("sound://default?tone=none", "plays nothing: give a tone or say=title"),
    ("sound://default?speed=2", r"unknown option 'speed' \(options: repeat, say, tone, volume\)"),
])
def test_bad_sound_urls_name_the_problem(url: str, needle: str) -> None:
    with pytest.raises(LampUrlError, match=needle):
        build_driver(url)


def test_a_wav_that_is_not_16_bit_cannot_take_a_volume(tmp_path: Path) -> None:
    path = tmp_path / "alarm.wav"
    with wave.open(str(path), "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(1)
        writer.setframerate(8000)
        writer.writeframes(bytes(800))
    assert build_driver(f"sound://default?tone={path}").url() == f"sound://default?tone={path}"
    with pytest.raises(LampUrlError, match="volume works only with 16-bit WAV files; this one has 8-bit samples"):
        build_driver(f"sound://default?tone={path}&volume=0.5")
    (tmp_path / "notes.wav").write_text("not a sound")
    with pytest.raises(LampUrlError, match="not a WAV file that can be read"):
        build_driver(f"sound://default?tone={tmp_path / 'notes.wav'}")
