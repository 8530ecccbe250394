"""The real LIFX emulator (PyPI `lifx-emulator`, by the author of lifx-async) on loopback.

One emulated colour bulb (serial d073d5000001, a LIFX Color) answering the LAN protocol on
a free UDP port, with the emulator's HTTP API on another port for the test's side of
things: the bulb's state, setting it, scenarios, and the log of packets it received.

    with LifxEmulator(tmp_path).start() as bulb:
        url = bulb.lamp_url()
        bulb.set(power=0, color=(10923, 20000, 30000, 2700))
        bulb.unplug(); bulb.plug()     # drop every packet (no answer, no ack) / answer again

A test that needs it fails when it is missing: `make test` installs the test extras.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from tests.daemon import free_port

SERIAL = "d073d5000001"
READY_TIMEOUT = 15.0
STOP_TIMEOUT = 5.0
EVERY_PACKET_TYPE = range(1024)  # LIFX packet types are below 1024
Hsbk = tuple[int, int, int, int]


def emulator_binary() -> str:
    found = shutil.which("lifx-emulator", path=str(Path(sys.executable).parent))
    if found is None:
        raise RuntimeError("lifx-emulator is not installed in this virtualenv: pip install lifx-emulator==4.11.0")
    return found


@dataclass
class LifxEmulator:
    workdir: Path
    port: int = field(default_factory=free_port)
    host: str = "127.0.0.1"  # Home Assistant's LIFX integration talks to port 56700 only: give it an address
    api_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=5))  # kept alive: a new one costs 20 ms

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.api_port}/api"

    def lamp_url(self, **options: str) -> str:
        query = "".join(f"&{k}={v}" for k, v in options.items())
        return f"lifx://{self.host}:{self.port}?serial={SERIAL}{query}"

    def start(self) -> LifxEmulator:
        self.workdir.mkdir(parents=True, exist_ok=True)
        command = [emulator_binary(), "--bind", self.host, "--port", str(self.port), "--color", "1",
                   "--api", "--api-host", "127.0.0.1", "--api-port", str(self.api_port)]
        with (self.workdir / "lifx-emulator.log").open("ab") as log:
            self.process = subprocess.Popen(command, cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"lifx-emulator exited with {self.process.returncode}: see {self.workdir}")
            try:
                if self.device():
                    return self
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError(f"lifx-emulator did not answer within {READY_TIMEOUT} s")

    def stop(self) -> None:
        self.http.close()
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> LifxEmulator:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.stop()

    # ---- the bulb, seen from outside -----------------------------------------------------

    def device(self) -> dict[str, Any]:
        """The bulb as the emulator reports it: power_level, color {hue, saturation, brightness, kelvin} ..."""
        answer = self.http.get(f"{self.api}/devices/{SERIAL}")
        answer.raise_for_status()
        return dict(answer.json())

    def hsbk(self) -> Hsbk:
        color = self.device()["color"]
        return color["hue"], color["saturation"], color["brightness"], color["kelvin"]

    def power(self) -> int:
        return int(self.device()["power_level"])

    def set(self, power: int, color: Hsbk) -> None:
        hue, saturation, brightness, kelvin = color
        body = {"power_level": power,
                "color": {"hue": hue, "saturation": saturation, "brightness": brightness, "kelvin": kelvin}}
        self.http.patch(f"{self.api}/devices/{SERIAL}/state", json=body).raise_for_status()

    def unplug(self) -> None:
        """Drop every packet to the bulb, acknowledgements included: it stops answering."""
        drop = {str(t): 1.0 for t in EVERY_PACKET_TYPE}
        self.http.put(f"{self.api}/scenarios/devices/{SERIAL}", json={"drop_packets": drop}).raise_for_status()

    def plug(self) -> None:
        self.http.delete(f"{self.api}/scenarios/devices/{SERIAL}")

    def received(self) -> dict[int, int]:
        """How many packets of each type the bulb has received since it started."""
        stats = self.http.get(f"{self.api}/stats").json()
        return {int(k): v for k, v in stats["packets_received_by_type"].items()}

    def recent_arrivals(self) -> list[tuple[float, int]]:
        """(time, packet type) of each packet received among the emulator's last 100 activity events."""
        events = self.http.get(f"{self.api}/activity").json()
        return [(e["timestamp"], e["packet_type"]) for e in events if e["direction"] == "rx"]
