"""pywizlight's own fake WiZ bulb, run as a separate process on a loopback port we choose.

The pywizlight wheel ships `pywizlight.tests.fake_bulb`, the bulb its own tests talk to: it
answers the WiZ UDP protocol (`getPilot`, `setPilot`, ...), keeps the pilot (what the bulb
shows) and prints every request it receives. It binds a random port, which a bulb that
goes away and comes back must not change, so this wrapper serves the fake's own request
handler on the port the test picked, with the pilot the test wants, stamps each printed
line with the time it was received, and (the fake merges every key it is ever sent) has a
setPilot that changes mode drop the other modes' keys, as a real bulb's pilot would:

    with WizBulb(tmp_path / "wiz", pilot=SCENE).start() as bulb:
        url = bulb.lamp_url(timeout="0.5")
        bulb.pilot()          # what the bulb shows now (asked over UDP, like the app)
        bulb.set_pilots()     # every setPilot's params, in order; bulb.arrivals(): when each came
        bulb.stop(); bulb.start()   # unplugged, then back on the same port (in its power-on pilot)

Run as `python -m tests.peers.wiz PORT PILOT_JSON` it is the bulb itself.
"""

from __future__ import annotations

import ast
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from tests.daemon import free_port
from tests.peers.process import PeerProcess

MODULE, FIRMWARE = "ESP01_SHRGB_03", "1.25.0"  # an RGB + tunable white bulb in the fake's catalogue
REPO = Path(__file__).resolve().parents[2]
READY_TIMEOUT = 10.0
IDENTITY = ("mac", "rssi", "src")
MODES = {"sceneId": ("sceneId", "speed"), "temp": ("temp",), "r": ("r", "g", "b", "c", "w")}  # by the key that sets it
ALL_MODE_KEYS = {key for keys in MODES.values() for key in keys}
CHECK_ID = "peer-check"  # marks the test's own getPilot requests, so they are not counted as the driver's
Pilot = dict[str, Any]


@dataclass
class WizBulb(PeerProcess):
    workdir: Path
    pilot_at_power_on: Pilot = field(default_factory=dict)  # what it shows when started (else the fake's own)
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.workdir / "wiz-bulb.log"

    def lamp_url(self, **options: str) -> str:
        query = "&".join(f"{k}={v}" for k, v in options.items())
        return f"wiz://127.0.0.1:{self.port}" + (f"?{query}" if query else "")

    def start(self) -> WizBulb:
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        self.spawn([sys.executable, "-u", "-m", "tests.peers.wiz", str(self.port), json.dumps(self.pilot_at_power_on)],
                   env=env)
        self.wait_ready(lambda: bool(self.pilot()), READY_TIMEOUT)
        return self

    def pilot(self) -> Pilot:
        """What the bulb shows now: its answer to a getPilot."""
        request = json.dumps({"method": "getPilot", "params": {}, "id": CHECK_ID}).encode()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(1.0)
            sock.sendto(request, ("127.0.0.1", self.port))
            answer: Pilot = json.loads(sock.recv(4096))["result"]
        return answer

    def received(self) -> list[tuple[float, Pilot]]:
        """(arrival time, request) of every request the driver sent, across restarts."""
        found = []
        for line in self.log_path.read_text().splitlines():
            stamp, _, text = line.partition(" ")
            if text.startswith("Request:"):
                request = json.loads(ast.literal_eval(text.removeprefix("Request:")))
                if request.get("id") != CHECK_ID:
                    found.append((float(stamp), request))
        return found

    def set_pilots(self) -> list[Pilot]:
        return [r["params"] for _, r in self.received() if r["method"] == "setPilot"]

    def arrivals(self) -> list[float]:
        return [at for at, _ in self.received()]


class StampedLines:
    """A stdout that prefixes every line with the time it was written (time.time())."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._partial = ""

    def write(self, text: str) -> int:
        lines = (self._partial + text).split("\n")
        self._partial = lines.pop()
        for line in lines:
            self._out.write(f"{time.time():.6f} {line}\n")
        self._out.flush()
        return len(text)

    def flush(self) -> None:
        self._out.flush()


async def serve(port: int, pilot: Pilot) -> None:
    """The fake bulb's request handler, answering on `port`."""
    from pywizlight.protocol import WizProtocol
    from pywizlight.tests.fake_bulb import make_udp_fake_bulb_server

    _, fake = await make_udp_fake_bulb_server(MODULE, FIRMWARE)
    handler = fake.on_response.__self__  # type: ignore[attr-defined]
    if pilot:  # the bulb's identity, and only the keys given: a bulb in a scene reports no colour
        initial = handler.pilot_state["result"]
        handler.pilot_state["result"] = {**{k: initial[k] for k in IDENTITY}, **pilot}
    transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
        lambda: WizProtocol(on_response=handler.handle), local_addr=("127.0.0.1", port))
    handler.transport = transport  # answers go out from the port the driver talks to
    handler.setPilot = switching_modes(handler)
    await asyncio.Event().wait()


def switching_modes(handler: Any) -> Callable[[Pilot], bytes]:
    """The fake's setPilot, switching mode as a real bulb does.

    A real bulb reports only its current mode's keys, and sceneId 0 outside a scene; the
    fake merges every key it was ever sent, so a colour sent to a bulb in a scene would
    still read as the scene. A setPilot that sets a mode drops the other modes' keys first.
    """
    fake_set_pilot = handler.setPilot

    def set_pilot(request: Pilot) -> bytes:
        pilot, params = handler.pilot_state["result"], request["params"]
        mode = next((m for m in MODES if m in params), None)
        if mode is not None:
            for key in ALL_MODE_KEYS - set(MODES[mode]):
                pilot.pop(key, None)
            if mode != "sceneId":
                pilot["sceneId"] = 0
        answer: bytes = fake_set_pilot(request)
        return answer

    return set_pilot


if __name__ == "__main__":
    sys.stdout = StampedLines(sys.__stdout__)  # type: ignore[assignment]
    asyncio.run(serve(int(sys.argv[1]), json.loads(sys.argv[2])))
