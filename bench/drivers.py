"""Device drivers against their peers on loopback: apply-to-device latency, and what a 1,000-change burst sends.

Peers: the real LIFX emulator for `lifx://`, a real Home Assistant 2024.3.3 for `hass://`,
pywizlight's fake bulb for `wiz://`, the npm Kasa simulator for `kasa://`; the wire-protocol
fakes of tests/peers/ for `wled://` (WLED JSON API), `hue://` (Hue v2 API over HTTPS),
`blink1://` (the mk2 HID reports) and `webhook://`/`ifttt://`.

- latency: changes one at a time, further apart than the vendor's rate limit, each timed
  from the `apply` call to the moment the device received the command that changed its
  colour (the emulator's own packet log for LIFX, the fake's arrival stamp otherwise).
  The HTTP fakes run in this process and event loop, so their numbers include its
  scheduling; the emulator is a separate process.
- burst: 1,000 desired colours over 5 s pushed into the service's own LampController
  (coalescing to the latest, pacing by the driver's min_interval); counts the commands the
  device received, the most in any 1 s window against the vendor's limit, and whether the
  device ends on the last colour.

    .venv/bin/python bench/drivers.py [--samples 200] [--burst 1000] [--only wled,hue]

Prints a report and writes bench/results/drivers.json. Timings are reported, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from blink1.blink1 import DEFAULT_GAMMA, DEFAULT_WHITE_POINT, ColorCorrect

from bench._stats import format_summary, machine, machine_line, summary_ms, write_results
from lamplighter.drivers.color import from_hsv, to_hex, to_hsv, to_rgb, to_xy
from lamplighter.drivers.registry import build_driver
from lamplighter.model import LampState
from tests.peers.fake_blink1 import FakeBlink1, FakeUsb
from tests.peers.fake_govee import FakeGovee, free_udp_port
from tests.peers.fake_hooks import IFTTT_KEY, FakeIfttt, FakeWebhook
from tests.peers.fake_hue import APP_KEY, FakeHueBridge, clamp_to_gamut
from tests.peers.fake_wled import FakeWled
from tests.peers.fake_yeelight import FakeYeelight
from tests.peers.homeassistant import HomeAssistant
from tests.peers.http_fake import most_in_any_window
from tests.peers.kasa import KasaDevice
from tests.peers.lamps import running_lamp, signal
from tests.peers.lifx import LifxEmulator
from tests.peers.tls import self_signed
from tests.peers.wiz import WizBulb

SET_COLOR = 102
HASS_LIGHT = "light.bed_light"
KASA_LIGHT = "smartlife.iot.smartbulb.lightingservice"
GAMMA = ColorCorrect(DEFAULT_GAMMA, DEFAULT_WHITE_POINT)
BURST_SECONDS = 5.0
SETTLE_SECONDS = 3.0
POLL_EVERY = 40  # burst changes between two looks at the device's arrivals


@dataclass
class Peer:
    """A device under test, seen from its side."""

    name: str
    url: str
    limit: str  # the vendor's limit, in words
    per_second: int  # ... and as the most commands in any second
    clock: Callable[[], float]  # the clock of `arrivals`
    arrivals: Callable[[], list[float]]  # when each command arrived (every message, for LIFX)
    change_arrivals: Callable[[], list[float]]  # when each colour-changing command arrived
    shows: Callable[[str], bool]  # does the device show this colour now?
    gap: float  # seconds between latency samples: over the vendor's interval


@contextlib.asynccontextmanager
async def lifx_peer(workdir: Path) -> AsyncIterator[Peer]:
    with LifxEmulator(workdir / "lifx").start() as bulb:
        seen: set[tuple[float, int]] = set()

        def arrivals(kinds: set[int] | None = None) -> list[float]:
            seen.update(bulb.recent_arrivals())
            return sorted(at for at, kind in seen if kinds is None or kind in kinds)

        def shows(color: str) -> bool:
            return bool(abs(bulb.hsbk()[0] - round(to_hsv(color)[0] / 360 * 65536) % 65536) <= 1)

        yield Peer("lifx", bulb.lamp_url(), "20 messages/s per bulb", 20, time.time, arrivals,
                   lambda: arrivals({SET_COLOR}), shows, 0.12)


@contextlib.asynccontextmanager
async def wled_peer(workdir: Path) -> AsyncIterator[Peer]:
    async with FakeWled() as strip:
        yield Peer("wled", f"wled://127.0.0.1:{strip.port}", "one request in flight (we send <= 10/s)", 10,
                   time.monotonic, lambda: strip.posts, lambda: strip.posts,
                   lambda color: to_hex(tuple(strip.color())) == color, 0.12)


@contextlib.asynccontextmanager
async def hue_peer(workdir: Path) -> AsyncIterator[Peer]:
    async with FakeHueBridge(self_signed(workdir / "tls", "bridge")) as bridge:
        light = bridge.add_light("Desk")

        def commands() -> list[float]:
            return [c.at for c in bridge.commands if c.status == 200]

        def shows(color: str) -> bool:
            gamut = bridge.light(light)["color"]["gamut"]
            return bool(bridge.light(light)["color"]["xy"] == clamp_to_gamut(*to_xy(color), gamut))

        yield Peer("hue", f"hue://{APP_KEY}@127.0.0.1:{bridge.port}/lights/1", "10 commands/s per light (429)", 10,
                   time.monotonic, commands, commands, shows, 0.12)


@contextlib.asynccontextmanager
async def webhook_peer(workdir: Path) -> AsyncIterator[Peer]:
    async with FakeWebhook() as hook:
        def arrivals() -> list[float]:
            return [p.at for p in hook.posts]

        yield Peer("webhook", f"webhook://127.0.0.1:{hook.port}/lamp", "ours: 1 POST/s", 1, time.monotonic,
                   arrivals, arrivals, lambda color: bool(hook.posts) and hook.posts[-1].body["color"] == color, 1.05)


@contextlib.asynccontextmanager
async def ifttt_peer(workdir: Path) -> AsyncIterator[Peer]:
    async with FakeIfttt() as ifttt:
        def arrivals() -> list[float]:
            return [p.at for p in ifttt.posts]

        yield Peer("ifttt", f"ifttt://{IFTTT_KEY}@lamplighter?base_url={ifttt.base_url}", "ours: 1 POST/s", 1,
                   time.monotonic, arrivals, arrivals,
                   lambda color: bool(ifttt.posts) and ifttt.posts[-1].body["value3"] == color, 1.05)


@contextlib.asynccontextmanager
async def hass_peer(workdir: Path) -> AsyncIterator[Peer]:
    with await asyncio.to_thread(HomeAssistant(workdir / "hass").start) as ha:
        async with ha.events("call_service") as calls:
            changes: list[float] = []

            def arrivals() -> list[float]:
                return [c.fired for c in calls if c.data["service_data"].get("entity_id") == HASS_LIGHT]

            def change_arrivals() -> list[float]:
                """When HA changed the light, by its own clock: the REST service call returns after the change."""
                changed = datetime.fromisoformat(ha.state(HASS_LIGHT)["last_updated"]).timestamp()
                if not changes or changes[-1] != changed:
                    changes.append(changed)
                return changes

            def shows(color: str) -> bool:  # HA's hue-saturation round trip may cost one step
                shown = ha.state(HASS_LIGHT)["attributes"]["rgb_color"] or [-9, -9, -9]
                return all(abs(a - b) <= 1 for a, b in zip(shown, to_rgb(color), strict=True))

            yield Peer("hass", ha.lamp_url(HASS_LIGHT), "ours: 10 requests/s (HA is local)", 10, time.time,
                       arrivals, change_arrivals, shows, 0.12)


@contextlib.asynccontextmanager
async def wiz_peer(workdir: Path) -> AsyncIterator[Peer]:
    with WizBulb(workdir / "wiz").start() as bulb:
        def set_pilots() -> list[float]:
            return [at for at, request in bulb.received() if request["method"] == "setPilot"]

        def shows(color: str) -> bool:
            pilot = bulb.pilot()
            return bool(pilot["state"]) and to_hex((pilot.get("r", 0), pilot.get("g", 0), pilot.get("b", 0))) == color

        yield Peer("wiz", bulb.lamp_url(), "none published (we send <= 5/s)", 5, time.time, bulb.arrivals,
                   set_pilots, shows, 0.25)


@contextlib.asynccontextmanager
async def kasa_peer(workdir: Path) -> AsyncIterator[Peer]:
    white = {"on_off": 1, "mode": "normal", "hue": 0, "saturation": 0, "color_temp": 2700, "brightness": 100}
    with KasaDevice(workdir / "kasa", "lb130", {"light_state": white}).start() as bulb:
        def light_commands() -> list[float]:
            return [at for at, request in bulb.received() if "transition_light_state" in request.get(KASA_LIGHT, {})]

        def shows(color: str) -> bool:
            light, (hue, saturation, _) = bulb.sysinfo().get("light_state", {}), to_hsv(color)
            return (light.get("on_off"), light.get("hue"), light.get("saturation")) == (
                1, round(hue) % 360, round(saturation * 100))

        yield Peer("kasa", bulb.lamp_url(), "none published (we send <= 5 requests/s)", 5, time.time, bulb.arrivals,
                   light_commands, shows, 0.25)


@contextlib.asynccontextmanager
async def blink1_peer(workdir: Path) -> AsyncIterator[Peer]:
    blink = FakeBlink1()
    with FakeUsb(blink).installed():
        def arrivals() -> list[float]:
            return [r.at for r in blink.color_commands()]

        yield Peer("blink1", "blink1://", "ours: 20 colours/s", 20, time.monotonic, arrivals, arrivals,
                   lambda color: blink.colors()[0] == GAMMA(*to_rgb(color)), 0.06)


@contextlib.asynccontextmanager
async def yeelight_peer(workdir: Path) -> AsyncIterator[Peer]:
    async with FakeYeelight() as bulb:
        def commands() -> list[float]:
            return [c.at for c in bulb.commands]

        def colours() -> list[float]:
            return [c.at for c in bulb.executed() if c.method in ("set_rgb", "set_scene")]

        yield Peer("yeelight", bulb.lamp_url(), "60 commands/min per connection (we send <= 55/min)", 2,
                   time.monotonic, commands, colours, lambda color: bulb.shows(power="on", rgb=int(color[1:], 16)),
                   1.2)  # 55 commands a minute: samples further apart than 60/55 s never wait for the quota


@contextlib.asynccontextmanager
async def govee_peer(workdir: Path) -> AsyncIterator[Peer]:
    listen_port = free_udp_port()
    async with FakeGovee(reply_port=listen_port) as light:
        def datagrams() -> list[float]:
            return [d.at for d in light.commands()]

        def colours() -> list[float]:
            return [d.at for d in light.commands("colorwc")]

        def shows(color: str) -> bool:
            return light.shows(color=dict(zip("rgb", to_rgb(color), strict=True)))

        yield Peer("govee", light.lamp_url(listen_port), "none published (we send <= 10 datagrams/s)", 10,
                   time.monotonic, datagrams, colours, shows, 0.35)


PEERS = {"lifx": lifx_peer, "wled": wled_peer, "hue": hue_peer, "webhook": webhook_peer, "ifttt": ifttt_peer,
         "hass": hass_peer, "wiz": wiz_peer, "kasa": kasa_peer, "blink1": blink1_peer,
         "yeelight": yeelight_peer, "govee": govee_peer}
ONE_WAY = {"webhook", "ifttt"}  # one POST a second: fewer latency samples


async def latency(peer: Peer, samples: int) -> list[float]:
    """Seconds from each `apply` call to the arrival of the command that changed the colour."""
    driver = build_driver(peer.url)
    results: list[float] = []
    try:
        await driver.apply(LampState(on=True, color="#ffffff"))  # warm up: connection open, TLS done
        await asyncio.sleep(peer.gap)
        for number in range(samples):
            before = len(peer.change_arrivals())
            started = peer.clock()
            await driver.apply(LampState(on=True, color=_color(number)))
            arrived = await _arrivals_after(peer, before)
            results.append(arrived[0] - started)
            await asyncio.sleep(peer.gap)
    finally:
        await driver.close()
    return results


async def _arrivals_after(peer: Peer, before: int) -> list[float]:
    """The colour-changing arrivals after the first `before`, waiting (up to a second) for a datagram
    that an unacknowledged protocol (Govee) has sent but the device has not yet read."""
    deadline = time.monotonic() + 1.0
    while not (arrived := peer.change_arrivals()[before:]) and time.monotonic() < deadline:
        await asyncio.sleep(0.0005)
    return arrived


async def burst(peer: Peer, changes: int, workdir: Path) -> dict[str, Any]:
    """Push `changes` colours over BURST_SECONDS through a LampController; what did the device get?"""
    before = len(peer.arrivals())
    last = _color(changes - 1)
    started = peer.clock()
    async with running_lamp(build_driver(peer.url), workdir) as lamp:
        for number in range(changes):
            lamp.show(signal(_color(number), number + 1))
            await asyncio.sleep(BURST_SECONDS / changes)
            if number % POLL_EVERY == 0:
                peer.arrivals()  # the emulator keeps only its last 100 packets: collect as we go
        deadline = time.monotonic() + SETTLE_SECONDS + 2 / peer.per_second
        while not peer.shows(last) and time.monotonic() < deadline:
            peer.arrivals()
            await asyncio.sleep(0.02)
        ended_on_last = peer.shows(last)
    arrivals = [at for at in peer.arrivals()[before:] if at >= started]
    return {"changes": changes, "seconds": BURST_SECONDS, "commands": len(arrivals),
            "most_in_any_second": most_in_any_window(arrivals), "vendor_limit": peer.limit,
            "within_limit": most_in_any_window(arrivals) <= peer.per_second, "ended_on_last": ended_on_last}


async def run(names: list[str], samples: int, changes: int) -> dict[str, Any]:
    report: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="lamplighter-bench-drivers-") as tmp:
        for name in names:
            workdir = Path(tmp) / name
            workdir.mkdir()
            async with PEERS[name](workdir) as peer:
                count = max(samples // 10, 10) if name in ONE_WAY else samples
                seconds = await latency(peer, count)
                report[name] = {"latency_ms": summary_ms(seconds), "burst": await burst(peer, changes, workdir)}
            print(format_summary(f"{name:8} apply -> device", report[name]["latency_ms"]))
            print(f"{'':8} burst: {_burst_line(report[name]['burst'])}")
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=200, help="latency samples per driver (one-way: a tenth)")
    parser.add_argument("--burst", type=int, default=1000, help="desired-state changes in the burst")
    parser.add_argument("--only", default=",".join(PEERS), help="comma-separated drivers")
    args = parser.parse_args()
    info = machine()
    print(machine_line(info))
    names = [n for n in args.only.split(",") if n]
    report = asyncio.run(run(names, args.samples, args.burst))
    path = write_results("drivers", {"machine": info, "samples": args.samples, "burst_changes": args.burst,
                                     "burst_seconds": BURST_SECONDS, "drivers": report})
    print(f"wrote {path}")


def _burst_line(result: dict[str, Any]) -> str:
    return (f"{result['changes']} changes in {result['seconds']:g} s -> {result['commands']} commands, "
            f"at most {result['most_in_any_second']} in any second (limit: {result['vendor_limit']}), "
            f"ended on the last colour: {'yes' if result['ended_on_last'] else 'NO'}")


def _color(number: int) -> str:
    """A distinct, fully saturated colour for each number (hue steps of 7 degrees)."""
    return from_hsv((number * 7) % 360, 1.0)


if __name__ == "__main__":
    main()
