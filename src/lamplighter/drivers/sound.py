"""`sound://[DEVICE]`: a siren on a speaker: a tone in a loop and/or the alert spoken, until it is switched off.

For a laptop or a Raspberry Pi with a speaker, configured under `sirens:`. When an alert
nobody acknowledged escalates, the siren is switched on with the signal behind it and plays
rounds of [the spoken "LEVEL: TITLE" (with `say=title`), then the tone] until it is switched
off (acknowledged or resolved), which kills the player at once.

DEVICE is an ALSA device name (`aplay -L` lists them), `default` when left out; percent-encode
the `:` and `,` of names like `plughw:1,0`. Options:

- `tone`: `siren` (the default: a wail rising and falling between 600 and 1200 Hz over 3 s,
  a whole number of cycles so it loops without a click), `beep` (two 880 Hz beeps a second),
  `none`, or the absolute path of a .wav file;
- `say=title`: speak "LEVEL: TITLE" with espeak-ng before each tone;
- `volume` from 0 to 1 (default 1): scales our tones, 16-bit WAV files and espeak-ng's voice;
- `repeat`: how many rounds to play (default: until switched off).

    sound://                                  sound://null?say=title
    sound://plughw%3A1%2C0?tone=beep&volume=0.5
    sound://default?tone=/home/pi/alarm.wav&say=title&repeat=3

The players are `aplay` (Debian package alsa-utils) and `espeak-ng` (package espeak-ng), run as
subprocesses; a missing one is a DriverError naming the package to install. Tones are written
here with the standard `wave` module, into a temporary directory removed on close. A round
lasts at least as long as its sounds even on a device that swallows audio at once (ALSA's
`null`), so the loop never spins.

The state is "on" while the siren is switched on, "off" otherwise: a siren is restored to off.
The first read plays 20 ms of silence to check that the device opens, and so does every
switch-on: a device that does not exist (or was unplugged) is DeviceOffline with aplay's words.
A failure while sounding is reported by the next read (the controller reads a siren back
half a second after switching it). Switching is paced to four times a second (a restart costs
a player process), with no calm interval: an acknowledged siren stops at once. Blink and pulse
are declared native: a siren sounds the same whatever the effect, and must never be emulated
by switching it on and off.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import shutil
import sys
import tempfile
import wave
from array import array
from asyncio.subprocess import DEVNULL, PIPE
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

from lamplighter.drivers.base import Driver, LampUrl
from lamplighter.drivers.options import check_options
from lamplighter.errors import DeviceOffline, DriverError, LampUrlError
from lamplighter.model import Effect, LampState, Signal

TONE, SAY, VOLUME, REPEAT = "tone", "say", "volume", "repeat"
SIREN, BEEP, NO_TONE = "siren", "beep", "none"
SAY_TITLE = "title"
DEFAULT_DEVICE = "default"
EXAMPLE = "sound://default?tone=siren&say=title"
PACKAGES = {"aplay": "alsa-utils", "espeak-ng": "espeak-ng"}  # the Debian package of each player

RATE = 22050  # samples a second, mono, 16-bit: what espeak-ng writes too
PEAK = 0.6 * 32767  # our tones' loudest sample at volume 1, with headroom for small speakers
SIREN_SECONDS, SIREN_LOW, SIREN_HIGH = 3.0, 600.0, 1200.0  # 3 s x 900 Hz on average: 2700 whole cycles
BEEP_HZ, BEEP_ON, BEEP_PERIOD, BEEPS = 880.0, 0.25, 0.5, 2
BEEP_EDGE = 0.005  # seconds of fade at each end of a beep, against clicks
PROBE_SECONDS = 0.02
SPEECH_PAUSE = 1.0  # silence after the spoken title when there is no tone
MAX_SPOKEN = 200  # characters of the title spoken
MAX_REPEAT = 1000


@dataclass(frozen=True)
class Sound:
    """A WAV file to play, and how long it lasts."""

    path: Path
    seconds: float


@dataclass
class Siren:
    """A switched-on siren: the state it was switched on with, and the task playing its rounds."""

    state: LampState
    task: asyncio.Task[None]


class SoundDriver(Driver):
    scheme = "sound"
    min_interval = 0.25
    calm_interval = 0.0  # an acknowledged siren stops at once, however recently it started
    tells_signal = True  # it speaks the title
    effects = frozenset(Effect)

    def __init__(self, url: LampUrl, device: str, tone: str | None, say: bool, volume: float,
                 repeat: int | None) -> None:
        super().__init__(url)
        self._device = device
        self._tone = tone  # siren, beep, the path of a WAV file, or None
        self._say = say
        self._volume = volume
        self._repeat = repeat
        self._workdir: Path | None = None
        self._sounds: dict[str, Sound] = {}
        self._siren: Siren | None = None
        self._device_checked = False

    @classmethod
    def from_url(cls, url: LampUrl) -> SoundDriver:
        if url.path not in ("", "/") or url.user or url.password or url.port is not None:
            raise LampUrlError(url.text(), f"takes an ALSA device and options: sound://[DEVICE]?..., e.g. {EXAMPLE}")
        check_options(url, {TONE, SAY, VOLUME, REPEAT})
        volume = _volume(url)
        tone = _tone(url, volume)
        say = _say(url)
        if tone is None and not say:
            raise LampUrlError(url.text(), "plays nothing: give a tone or say=title")
        return cls(url, unquote(url.host) or DEFAULT_DEVICE, tone, say, volume, _repeat(url))

    async def apply(self, state: LampState, showing: Signal | None = None) -> None:
        await self._silence()
        if state.on:
            sounds = await self._round(showing)
            await self._check_device()
            self._siren = Siren(state, asyncio.create_task(self._sound(sounds), name=f"siren {self.url()}"))

    async def read_state(self) -> LampState:
        if self._siren is None:
            self._binary("aplay")
            if not self._device_checked:
                await self._check_device()
            return LampState(on=False)
        failure = _failure(self._siren.task)
        if failure is not None:
            self._siren = None
            raise failure
        return self._siren.state

    async def close(self) -> None:
        await self._silence()
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir, self._sounds = None, {}

    async def _silence(self) -> None:
        """Stop the siren, if it sounds: the task is cancelled and its player killed before this returns."""
        siren, self._siren = self._siren, None
        if siren is not None:
            siren.task.cancel()
            await asyncio.wait({siren.task})
            _failure(siren.task)  # retrieved: a failure that nobody read is no longer news

    async def _sound(self, sounds: list[Sound]) -> None:
        """Play the round `repeat` times (or until cancelled), each round at least as long as its sounds."""
        loop = asyncio.get_running_loop()
        length = sum(s.seconds for s in sounds) + (SPEECH_PAUSE if self._tone is None else 0.0)
        rounds: Iterable[int] = itertools.count() if self._repeat is None else range(self._repeat)
        for _ in rounds:
            started = loop.time()
            for sound in sounds:
                await self._play(sound)
            await asyncio.sleep(max(0.0, started + length - loop.time()))

    async def _round(self, showing: Signal | None) -> list[Sound]:
        """The sounds of one round: the spoken title (if asked for and known), then the tone."""
        spoken = [await self._speech(f"{showing.level}: {showing.title}")] if self._say and showing is not None else []
        return spoken + ([await self._prepared(self._tone)] if self._tone is not None else [])

    async def _check_device(self) -> None:
        await self._play(await self._prepared(PROBE))
        self._device_checked = True

    async def _play(self, sound: Sound) -> None:
        code, said = await self._run("aplay", "-q", "-D", self._device, str(sound.path))
        if code:
            self._device_checked = False  # the next read checks it again: is it back?
            raise DeviceOffline(f"{self.url()}: ALSA device {self._device!r} cannot play ({said}); "
                                "`aplay -L` lists the devices")

    async def _speech(self, text: str) -> Sound:
        path = self._dir() / "speech.wav"
        amplitude = str(round(100 * self._volume))  # espeak-ng's default is 100
        code, said = await self._run("espeak-ng", "-a", amplitude, "-w", str(path), "--stdin",
                                     text=text[:MAX_SPOKEN].encode())
        if code:
            raise DriverError(f"{self.url()}: espeak-ng could not speak the title ({said})")
        return Sound(path, await asyncio.to_thread(wav_seconds, path))

    async def _run(self, program: str, *args: str, text: bytes | None = None) -> tuple[int, str]:
        """Run a player to its end (killed at once if cancelled): its exit code and its last words on stderr."""
        try:
            process = await asyncio.create_subprocess_exec(
                self._binary(program), *args, stdin=DEVNULL if text is None else PIPE, stdout=DEVNULL, stderr=PIPE)
        except OSError as exc:
            raise DriverError(f"{self.url()}: cannot run {program}: {exc}") from None
        try:
            _, stderr = await process.communicate(text)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
        return process.returncode or 0, _last_words(stderr)

    def _binary(self, program: str) -> str:
        found = shutil.which(program)
        if found is None:
            package = PACKAGES[program]
            raise DriverError(f"{self.url()} needs {program}, which is not installed: install the Debian package "
                              f"{package} (apt-get install {package})")
        return found

    async def _prepared(self, name: str) -> Sound:
        """A sound file by name (a generated tone, the probe, or the user's WAV file), written once."""
        if name not in self._sounds:
            self._sounds[name] = await asyncio.to_thread(self._write_sound, name)
        return self._sounds[name]

    def _write_sound(self, name: str) -> Sound:
        if name in GENERATED:
            path = self._dir() / f"{name}.wav"
            write_wav(path, GENERATED[name](self._volume))
        elif self._volume < 1:
            path = self._dir() / "tone.wav"
            scale_wav(Path(name), path, self._volume)
        else:
            path = Path(name)
        return Sound(path, wav_seconds(path))

    def _dir(self) -> Path:
        if self._workdir is None:
            self._workdir = Path(tempfile.mkdtemp(prefix="lamplighter-sound-"))
        return self._workdir


def _failure(task: asyncio.Task[None]) -> BaseException | None:
    """Why a finished siren task failed; None while it runs, when it ended well or was cancelled."""
    return task.exception() if task.done() and not task.cancelled() else None


def _last_words(stderr: bytes) -> str:
    lines = [line.strip() for line in stderr.decode(errors="replace").splitlines() if line.strip()]
    return " / ".join(lines[-2:])[:300] or "no message"


# ---- the URL's options --------------------------------------------------------------------


def _volume(url: LampUrl) -> float:
    text = url.param(VOLUME, "1")
    try:
        volume = float(text)
    except ValueError:
        volume = -1.0
    if not 0 < volume <= 1:
        raise LampUrlError(url.text(), f"volume must be a number above 0 and at most 1, not {text!r}")
    return volume


def _say(url: LampUrl) -> bool:
    text = url.param(SAY)
    if text not in ("", SAY_TITLE):
        raise LampUrlError(url.text(), f"say can only be {SAY_TITLE!r} (speak the level and title), not {text!r}")
    return text == SAY_TITLE


def _repeat(url: LampUrl) -> int | None:
    text = url.param(REPEAT)
    if not text:
        return None
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= MAX_REPEAT:
        raise LampUrlError(url.text(), f"repeat must be a number of rounds from 1 to {MAX_REPEAT}, not {text!r}")
    return int(text)


def _tone(url: LampUrl, volume: float) -> str | None:
    """siren, beep, None for `none`, or the path of a WAV file that exists and can be played."""
    text = url.param(TONE, SIREN)
    if text in (SIREN, BEEP):
        return text
    if text == NO_TONE:
        return None
    path = Path(text).expanduser()
    if not path.is_absolute() or path.suffix.lower() != ".wav":
        raise LampUrlError(url.text(), f"tone must be siren, beep, none or the absolute path of a .wav, not {text!r}")
    problem = _wav_problem(path, volume)
    if problem:
        raise LampUrlError(url.text(), f"tone {text}: {problem}")
    return str(path)


def _wav_problem(path: Path, volume: float) -> str:
    """Why this WAV file cannot be our tone ('' when it can)."""
    try:
        with wave.open(str(path), "rb") as reader:
            width = reader.getsampwidth()
    except FileNotFoundError:
        return "no such file"
    except (OSError, EOFError, wave.Error) as exc:
        return f"not a WAV file that can be read ({exc})"
    if volume < 1 and width != 2:
        return f"volume works only with 16-bit WAV files; this one has {8 * width}-bit samples"
    return ""


# ---- writing sounds -----------------------------------------------------------------------


def siren_samples(volume: float) -> array[int]:
    """A wail from SIREN_LOW up to SIREN_HIGH and back: the phase is the integral of the frequency."""
    swing = (SIREN_HIGH - SIREN_LOW) / 2

    def phase(t: float) -> float:
        return 2 * math.pi * (SIREN_LOW * t + swing * (t - SIREN_SECONDS / (2 * math.pi)
                                                       * math.sin(2 * math.pi * t / SIREN_SECONDS)))

    peak = PEAK * volume
    return array("h", (round(peak * math.sin(phase(n / RATE))) for n in range(round(SIREN_SECONDS * RATE))))


def beep_samples(volume: float) -> array[int]:
    """BEEPS beeps of BEEP_ON seconds, one every BEEP_PERIOD, with soft edges."""
    on, period, edge = round(BEEP_ON * RATE), round(BEEP_PERIOD * RATE), round(BEEP_EDGE * RATE)
    peak = PEAK * volume

    def sample(n: int) -> int:
        k = n % period
        envelope = min(1.0, k / edge, (on - k) / edge) if k < on else 0.0
        return round(peak * envelope * math.sin(2 * math.pi * BEEP_HZ * n / RATE))

    return array("h", (sample(n) for n in range(period * BEEPS)))


def silence(_volume: float) -> array[int]:
    return array("h", bytes(2 * round(PROBE_SECONDS * RATE)))


PROBE = "probe"
GENERATED: dict[str, Callable[[float], array[int]]] = {SIREN: siren_samples, BEEP: beep_samples, PROBE: silence}


def write_wav(path: Path, samples: array[int]) -> None:
    """Mono 16-bit samples at RATE as a WAV file (little-endian, as WAV wants)."""
    with wave.open(str(path), "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(RATE)
        writer.writeframes(_little_endian(samples))


def scale_wav(source: Path, target: Path, volume: float) -> None:
    """A copy of a 16-bit WAV file with every sample scaled by `volume`."""
    with wave.open(str(source), "rb") as reader:
        params = reader.getparams()
        samples = array("h", reader.readframes(params.nframes))
    if sys.byteorder == "big":
        samples.byteswap()
    with wave.open(str(target), "wb") as writer:
        writer.setparams(params)
        writer.writeframes(_little_endian(array("h", (round(s * volume) for s in samples))))


def wav_seconds(path: Path) -> float:
    with wave.open(str(path), "rb") as reader:
        return reader.getnframes() / reader.getframerate()


def _little_endian(samples: array[int]) -> bytes:
    if sys.byteorder == "big":
        samples = array("h", samples)
        samples.byteswap()
    return samples.tobytes()
