"""A simulated TP-Link Kasa device (npm `tplink-smarthome-simulator`) on loopback, one per process.

The simulator speaks the legacy Kasa protocol (XOR-autokey JSON over TCP, and UDP, on one
port) for plugs (hs100, hs105, hs110, hs200) and, less completely, bulbs (lb100, lb130).
A small Node script starts one device on 127.0.0.1 at the port the test picked and
logs, as JSON lines with the time, every request the device received and the device's
state (its `sysinfo`) after each answer:

    with KasaDevice(tmp_path / "kasa", "hs100", {"relay_state": 1}).start() as plug:
        url = plug.lamp_url(timeout="0.5")
        plug.sysinfo()["relay_state"]     # what it shows now
        plug.commands()                   # every request other than a read, in order
        plug.stop(); plug.start()         # unplugged, then back on the same port (as it powers up)

`scripts/ensure-kasa-simulator` installs the simulator (`make test` runs it); a test that
needs it fails, with that advice, when Node.js or the simulator is missing.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.daemon import free_port
from tests.peers.process import PeerProcess

REPO = Path(__file__).resolve().parents[2]
SIMULATOR = REPO / ".cache/peers/kasa-sim/node_modules/tplink-smarthome-simulator"
READY_TIMEOUT = 10.0
READS = ({"system": {"get_sysinfo": {}}},)  # requests that change nothing, left out of `commands()`
Json = dict[str, Any]

SCRIPT = """
const [simulator, model, port, sysinfo] = process.argv.slice(2);
const { Device } = require(simulator);
const log = (event, fields) => console.log(JSON.stringify({ at: (performance.timeOrigin + performance.now()) / 1000,
                                                          event, ...fields }));
const device = new Device({ model, port: Number(port), address: '127.0.0.1',
                            data: { system: { sysinfo: JSON.parse(sysinfo) } } });
device.deviceNetworking.on('data', ({ protocol, message }) => log('received', { protocol, message }));
device.deviceNetworking.on('response', () => log('state', { sysinfo: device.data.system.sysinfo }));
device.start().then(() => log('ready', { port: device.port }));
"""


def node_binary() -> str:
    found = shutil.which("node")
    if found is None:
        raise RuntimeError("Node.js is missing: the Kasa simulator needs node 16+ (Debian: apt-get install nodejs npm)")
    if not SIMULATOR.is_dir():
        raise RuntimeError(f"the Kasa simulator is not in {SIMULATOR.parent}: run scripts/ensure-kasa-simulator")
    return found


@dataclass
class KasaDevice(PeerProcess):
    workdir: Path
    model: str = "hs100"
    sysinfo_at_power_on: Json = field(default_factory=dict)  # merged over the model's default sysinfo
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.workdir / f"kasa-{self.model}.log"

    def lamp_url(self, **options: str) -> str:
        query = "&".join(f"{k}={v}" for k, v in options.items())
        return f"kasa://127.0.0.1:{self.port}" + (f"?{query}" if query else "")

    def start(self) -> KasaDevice:
        node = node_binary()
        self.workdir.mkdir(parents=True, exist_ok=True)
        script = self.workdir / "kasa-device.js"
        script.write_text(SCRIPT)
        sysinfo = json.dumps(self.sysinfo_at_power_on)
        self.spawn([node, str(script), str(SIMULATOR), self.model, str(self.port), sysinfo])
        self.wait_ready(self._listening, READY_TIMEOUT)
        return self

    def events(self, kind: str) -> list[Json]:
        lines = self.log_path.read_text().splitlines() if self.log_path.exists() else []
        return [event for event in map(json.loads, (line for line in lines if line.startswith("{")))
                if event["event"] == kind]

    def sysinfo(self) -> Json:
        """The device's state after the last request it answered ({} before the first)."""
        states = self.events("state")
        sysinfo: Json = states[-1]["sysinfo"] if states else {}
        return sysinfo

    def received(self) -> list[tuple[float, Json]]:
        """(arrival time, request) of every request, across restarts."""
        return [(event["at"], json.loads(event["message"])) for event in self.events("received")]

    def commands(self) -> list[Json]:
        """Every request other than a plain read of the device's info, in order."""
        return [request for _, request in self.received() if request not in READS]

    def arrivals(self) -> list[float]:
        return [at for at, _ in self.received()]

    def _listening(self) -> bool:
        if not self.events("ready"):
            return False
        socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
        return True
