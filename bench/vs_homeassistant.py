"""Lamplighter beside Home Assistant 2024.3.3, in one run, on the same devices: from an event to the device.

Devices (all on loopback; WLED, Hue and LIFX each on a loopback address of its own, because
Home Assistant's libraries talk to fixed ports: python-wled to 80, aiohue to 80 and 443,
aiolifx to 56700; so this runs as root):
  wled   tests/peers/fake_wled.py (JSON API and websocket)      HA: the WLED integration
  hue    tests/peers/fake_hue.py (v2 API, event stream, HTTPS)  HA: the Hue integration (aiohue)
  lifx   the real lifx-emulator                                 HA: the LIFX integration (aiolifx)
  z2m    tests/peers/fake_zigbee2mqtt.py on a real Mosquitto    HA: an MQTT light, schema json (YAML)
Home Assistant's integrations are set up through its own config-flow REST API, as a user
would in its UI (the Hue bridge's link button counts as pressed). Per device an automation:
`POST /api/webhook/lamplighter_bench_NAME` -> `light.turn_on` red on that device.

Lamplighter: per device a real `lamplighter run` with that one device as its lamp, the guards
off (every event is shown) and the 911 held 1 s. Events alternate between the two systems;
each is timed from just before its HTTP POST (`/api/webhook/...` or `/api/events`, a 911 with
its own key) to the device's arrival of the colour command (the fakes stamp arrivals with
time.perf_counter(); the LIFX emulator logs them with its wall clock). Between events the
device goes back to the same idle state: Lamplighter restores it itself (we wait for that),
after Home Assistant's event the device is put back as its own switch would (the fakes and
the emulator's API), and then a pause longer than the device's pacing.

Also, without a ratio: Lamplighter driving a Home Assistant light (`hass://`, HA's demo
`light.bed_light`), from the POST to HA's `state_changed` for it (HA's clock): HA is then
part of our path.

    .venv/bin/python bench/vs_homeassistant.py [--events 200] [--only wled,hue,lifx,z2m,hass]

Prints a table and writes bench/results/vs_homeassistant.json (or --results FILE). Timings are
reported, never asserted. Needs root (ports 80, 443 and 56700 on loopback addresses), Mosquitto,
the lifx-emulator and Home Assistant's venv (scripts/ensure-hass-venv); the LIFX emulator holds
UDP port 56700, so only one run with LIFX at a time on a machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp
import httpx

from bench._stats import RESULTS, daemon, format_summary, machine, machine_line, summary_ms
from lamplighter.drivers.color import to_hsv
from tests.peers.fake_hue import APP_KEY, FakeHueBridge
from tests.peers.fake_wled import FakeWled
from tests.peers.fake_zigbee2mqtt import FakeZigbee2Mqtt
from tests.peers.homeassistant import Event, HomeAssistant
from tests.peers.lifx import LifxEmulator
from tests.peers.mosquitto import Mosquitto
from tests.peers.tls import self_signed

T = TypeVar("T")
DEVICES = ("wled", "hue", "lifx", "z2m")
HASS_LIGHT = "light.bed_light"
Z2M_NAME = "bench_light"
SET_COLOR = 102  # LIFX LightSetColor
WAIT = 5.0  # seconds for a device to get a command or show a state
HOLD = "1s"
FLOW_TIMEOUT = 60.0  # HA's LIFX flow alone may take 15 s to give up on a bulb
READ_BACK = 0.8  # Lamplighter reads a device back 0.5 s after a change: HA's next event comes after that
LAMPLIGHTER_CONFIG = """\
lamps: {{{name}: "{url}"}}
levels:
  "911": {{hold: {hold}, effect: solid}}  # steady red, as the Home Assistant automation turns it on
guards:
  rate_limit:
    per_sender: {{every: 1ms, burst: 100000}}
    per_source: {{every: 1ms, burst: 100000}}
"""
HA_CONFIG = """\
config:
webhook:
automation: !include automations.yaml
mqtt:
  light:
    - name: Bench z2m
      unique_id: lamplighter_bench_z2m
      schema: json
      command_topic: zigbee2mqtt/{name}/set
      state_topic: zigbee2mqtt/{name}
      availability_topic: zigbee2mqtt/{name}/availability
      availability_template: "{{{{ value_json.state }}}}"
      brightness: true
      brightness_scale: 254
      color_mode: true
      supported_color_modes: [xy, color_temp]
"""


# ---- the devices, served from a thread of their own ------------------------------------------


class Loop:
    """An asyncio loop in a background thread: the fakes answer while the main thread waits on sockets."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="devices", daemon=True)
        self.thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@dataclass
class Device:
    """A device as both systems see it, and how the bench watches it."""

    name: str
    lamp_url: str  # for Lamplighter
    ha_host: str | None  # for Home Assistant's config flow (None: configured in YAML)
    red_after: Callable[[float, float], float | None]  # (perf_counter, wall clock) at the POST -> seconds to red
    idle: Callable[[], bool]  # back in its idle state?
    reset: Callable[[], None]  # put it back to idle, as its own switch would
    gap: float  # pause after idle: over the pacing of Lamplighter's driver
    poll: float = 0.002  # how often to look (the device stamps arrivals itself: this only costs CPU)
    ha_entity: str = ""


def wait_for(check: Callable[[], T | None], timeout: float = WAIT, every: float = 0.002) -> T | None:
    deadline = time.perf_counter() + timeout
    while (found := check()) is None or found is False:
        if time.perf_counter() > deadline:
            return None
        time.sleep(every)
    return found


def _loopback() -> Iterator[str]:
    """Distinct loopback addresses for this run (any 127.x.y.z answers on Linux)."""
    base = f"127.{random.randint(64, 250)}.{random.randint(1, 250)}"
    for last in range(2, 255):
        yield f"{base}.{last}"


@contextlib.contextmanager
def wled_device(loop: Loop, host: str) -> Iterator[Device]:
    strip = FakeWled(host=host, port=80)
    loop.run(strip.__aenter__())
    idle = [255, 160, 0]

    def red_after(started: float, _wall: float) -> float | None:
        for (at, _), (_, _, state) in zip(list(strip.arrivals), list(strip.changes), strict=False):
            if at >= started and state["on"] and state["seg"][0]["col"][0][:3] == [255, 0, 0]:
                return at - started
        return None

    def reset() -> None:
        loop.run(_wled_reset(strip, idle))

    try:
        yield Device("wled", f"wled://{host}:80", host, red_after,
                     lambda: bool(strip.state["on"]) and strip.color() == idle, reset, 0.15)
    finally:
        loop.run(strip.__aexit__(None, None, None))


async def _wled_reset(strip: FakeWled, idle: list[int]) -> None:
    strip.set_state({"on": True, "bri": 128, "seg": [{"id": 0, "col": [idle], "fx": 0}]})


@contextlib.contextmanager
def hue_device(loop: Loop, host: str, workdir: Path) -> Iterator[Device]:
    bridge = FakeHueBridge(self_signed(workdir / "tls", "bridge"), host=host, port=443, plain_port=80)
    loop.run(bridge.__aenter__())
    light = bridge.add_light("Bench hue", xy=(0.4573, 0.41))
    idle_xy = dict(bridge.light(light)["color"]["xy"])

    def red_after(started: float, _wall: float) -> float | None:
        for command in list(bridge.commands):
            if command.arrived >= started and command.status == 200 and "color" in command.body:
                return command.arrived - started
        return None

    def idle() -> bool:
        shown = bridge.light(light)
        return bool(shown["on"]["on"]) and shown["color"]["xy"] == idle_xy

    def reset() -> None:
        loop.run(_call(lambda: bridge.set_light(light, {"on": {"on": True}, "color": {"xy": idle_xy}})))

    try:
        yield Device("hue", f"hue://{APP_KEY}@{host}:443/lights/1", host, red_after, idle, reset, 0.15)
    finally:
        loop.run(bridge.__aexit__(None, None, None))


async def _call(function: Callable[[], None]) -> None:
    function()


@contextlib.contextmanager
def lifx_device(host: str, workdir: Path) -> Iterator[Device]:
    idle_hsbk = (10923, 20000, 30000, 2700)
    with LifxEmulator(workdir / "lifx", port=56700, host=host).start() as bulb:
        bulb.set(power=65535, color=idle_hsbk)
        red_hue = round(to_hsv("#ff0000")[0] / 360 * 65536) % 65536

        def red_after(_started: float, wall: float) -> float | None:
            arrivals = sorted(at for at, kind in bulb.recent_arrivals() if kind == SET_COLOR and at >= wall)
            if not arrivals:
                return None
            hue = bulb.hsbk()[0]
            return arrivals[0] - wall if min(abs(hue - red_hue), 65536 - abs(hue - red_hue)) <= 1 else None

        yield Device("lifx", bulb.lamp_url(), host, red_after,
                     lambda: bulb.power() > 0 and bulb.hsbk() == idle_hsbk,
                     lambda: bulb.set(power=65535, color=idle_hsbk), 0.1, poll=0.02)  # each look: 2 HTTP requests


@contextlib.contextmanager
def z2m_device(broker: Mosquitto) -> Iterator[Device]:
    idle = {"state": "ON", "brightness": 200, "color": {"x": 0.4573, "y": 0.41}, "color_mode": "xy"}
    with FakeZigbee2Mqtt(broker.port) as z2m:
        z2m.add_light(Z2M_NAME, **idle)

        def red_after(started: float, _wall: float) -> float | None:
            for command in z2m.sets(Z2M_NAME):
                if command.arrived >= started and "color" in command.body:
                    return command.arrived - started
            return None

        def is_idle() -> bool:
            state = z2m.state(Z2M_NAME)
            return all(state.get(k) == v for k, v in idle.items())

        yield Device("z2m", f"z2m://{broker.address}/{Z2M_NAME}", None, red_after, is_idle,
                     lambda: z2m.set(Z2M_NAME, **idle), 1.1)  # our z2m driver: one command a second


# ---- Home Assistant ------------------------------------------------------------------------


def ha_flow(ha: HomeAssistant, handler: str, *steps: dict[str, Any]) -> dict[str, Any]:
    """Run a config flow through HA's REST API (what its UI does); return the created entry."""
    headers = {"Authorization": f"Bearer {ha.token}"}
    answer = ha.http.post(f"{ha.url}/api/config/config_entries/flow", headers=headers,
                          json={"handler": handler, "show_advanced_options": False}, timeout=FLOW_TIMEOUT)
    answer.raise_for_status()
    result = answer.json()
    for step in steps:
        if result.get("type") != "form":
            break
        answer = ha.http.post(f"{ha.url}/api/config/config_entries/flow/{result['flow_id']}", headers=headers,
                              json=step, timeout=FLOW_TIMEOUT)
        answer.raise_for_status()
        result = answer.json()
    if result.get("type") != "create_entry":
        raise RuntimeError(f"Home Assistant's {handler} config flow did not create an entry: {result}")
    return dict(result["result"])


def ha_lights(ha: HomeAssistant, entry_id: str) -> list[str]:
    """The light entities a config entry made, from HA's entity registry."""
    async def listing() -> list[dict[str, Any]]:
        async with aiohttp.ClientSession() as session, session.ws_connect(f"{ha.url}/api/websocket") as socket:
            await socket.receive_json()
            await socket.send_json({"type": "auth", "access_token": ha.token})
            await socket.receive_json()
            await socket.send_json({"id": 1, "type": "config/entity_registry/list"})
            return list((await socket.receive_json())["result"])
    entries = asyncio.run(listing())
    return [e["entity_id"] for e in entries if e.get("config_entry_id") == entry_id and
            e["entity_id"].startswith("light.")]


def set_up_ha(ha: HomeAssistant, devices: list[Device], broker: Mosquitto | None) -> list[str]:
    """Config entries for each device's integration, then the automations; returns what could not be set up."""
    problems: list[str] = []
    flows: dict[str, Callable[[str], dict[str, Any]]] = {
        "wled": lambda host: ha_flow(ha, "wled", {"host": host}),
        "hue": lambda host: ha_flow(ha, "hue", {"host": host}, {}),
        "lifx": lambda host: ha_flow(ha, "lifx", {"host": host}),
    }
    if broker is not None:
        ha_flow(ha, "mqtt", {"broker": "127.0.0.1", "port": broker.port})
    for device in devices:
        try:
            if device.ha_host is None:
                device.ha_entity = "light.bench_z2m"
            else:
                entry = flows[device.name](device.ha_host)
                lights = wait_for(lambda entry_id=entry["entry_id"]: ha_lights(ha, entry_id), timeout=20, every=0.5)
                if not lights:
                    raise RuntimeError(f"no light entity appeared for config entry {entry['entry_id']}")
                device.ha_entity = lights[0]
            if wait_for(lambda d=device: _ha_shows_state(ha, d), timeout=30, every=0.5) is None:
                raise RuntimeError(f"{device.ha_entity} stayed unavailable in Home Assistant; its lights: "
                                   f"{_ha_light_states(ha)}")
        except Exception as error:  # reported; the other devices go on
            problems.append(f"{device.name}: Home Assistant could not be set up: {error}")
            device.ha_entity = ""
    automations = [{"id": f"lamplighter_bench_{d.name}", "alias": f"lamplighter bench {d.name}",
                    "trigger": [{"platform": "webhook", "webhook_id": f"lamplighter_bench_{d.name}",
                                 "allowed_methods": ["POST"], "local_only": True}],
                    "action": [{"service": "light.turn_on", "target": {"entity_id": d.ha_entity},
                                "data": {"rgb_color": [255, 0, 0], "brightness": 255}}]}
                   for d in devices if d.ha_entity]
    (ha.workdir / "config" / "automations.yaml").write_text(json.dumps(automations))  # JSON is YAML
    ha.call("automation", "reload")
    return problems


def _ha_light_states(ha: HomeAssistant) -> dict[str, str]:
    answer = ha.http.get(f"{ha.url}/api/states", headers={"Authorization": f"Bearer {ha.token}"})
    return {s["entity_id"]: s["state"] for s in answer.json() if s["entity_id"].startswith("light.")}


def _ha_shows_state(ha: HomeAssistant, device: Device) -> bool:
    """Does HA know the light's state? Else the device says it again (a Zigbee2MQTT state is not retained,
    and HA may have subscribed after the first one)."""
    answer = ha.http.get(f"{ha.url}/api/states/{device.ha_entity}", headers={"Authorization": f"Bearer {ha.token}"})
    if answer.status_code == 200 and answer.json()["state"] not in ("unavailable", "unknown"):
        return True
    device.reset()
    return False


# ---- the measurement -------------------------------------------------------------------------


@dataclass
class Series:
    """One device's samples for one system, and what went wrong."""

    seconds: list[float] = field(default_factory=list)
    misses: list[str] = field(default_factory=list)


def ha_event(client: httpx.Client, device: Device, number: int, series: Series) -> None:
    if not wait_for(device.idle, every=device.poll):
        series.misses.append(f"#{number}: not idle before the event")
        return
    started, wall = time.perf_counter(), time.time()
    answer = client.post(f"/api/webhook/lamplighter_bench_{device.name}", json={"n": number})
    took = wait_for(lambda: device.red_after(started, wall), every=device.poll)
    if answer.status_code != 200 or took is None:
        series.misses.append(f"#{number}: webhook {answer.status_code}, red {'seen' if took else 'not seen'}")
        return
    series.seconds.append(took)
    time.sleep(0.05)  # let Home Assistant finish its own follow-up (a state read, its state machine)
    device.reset()
    wait_for(device.idle, every=device.poll)
    time.sleep(device.gap)


def our_event(client: httpx.Client, device: Device, number: int, run_id: str, series: Series) -> None:
    if not wait_for(device.idle, every=device.poll):
        series.misses.append(f"#{number}: not idle before the event")
        return
    started, wall = time.perf_counter(), time.time()
    answer = client.post("/api/events", json={"level": "911", "title": f"bench {device.name} {run_id} #{number}",
                                              "sender": "bench", "key": f"{run_id}-{device.name}-{number}"})
    took = wait_for(lambda: device.red_after(started, wall), every=device.poll)
    shown = answer.status_code == 202 and answer.json().get("outcome") == "shown"
    if not shown or took is None:
        series.misses.append(f"#{number}: POST {answer.status_code} {answer.text[:80]}, "
                             f"red {'seen' if took else 'not seen'}")
    else:
        series.seconds.append(took)
    if wait_for(device.idle, timeout=10, every=device.poll) is None:  # the 1 s hold ends, Lamplighter restores
        series.misses.append(f"#{number}: not restored within 10 s")
    time.sleep(max(device.gap, READ_BACK))


def compare(ha: HomeAssistant, device: Device, events: int, run_id: str, workdir: Path) -> dict[str, Any]:
    """HA's and our events on one device, alternating."""
    ours, theirs = Series(), Series()
    config = LAMPLIGHTER_CONFIG.format(name=device.name, url=device.lamp_url, hold=HOLD)
    with daemon(f"vs_homeassistant.{device.name}", config, workdir / f"lamplighter-{device.name}") as d, \
            d.client() as client, httpx.Client(base_url=ha.url, timeout=10) as ha_client:
        for number in range(-3, events):  # 3 warm-ups each: connections open, first reads done
            if device.ha_entity:
                ha_event(ha_client, device, number, theirs if number >= 0 else Series())
            our_event(client, device, number, run_id, ours if number >= 0 else Series())
    return {"home_assistant_ms": summary_ms(theirs.seconds) if device.ha_entity else None,
            "lamplighter_ms": summary_ms(ours.seconds),
            "misses": {"home_assistant": theirs.misses[:20], "lamplighter": ours.misses[:20]},
            "samples_ms": {"home_assistant": _rounded(theirs.seconds), "lamplighter": _rounded(ours.seconds)}}


def through_hass(loop: Loop, ha: HomeAssistant, events: int, run_id: str, workdir: Path) -> dict[str, Any]:
    """Our event to HA's state_changed for a HA light driven through `hass://`."""
    changes: list[list[Event]] = []  # HA's state_changed events, as they arrive
    ready, stop = threading.Event(), threading.Event()

    async def collect() -> None:
        async with ha.events("state_changed") as seen:
            changes.append(seen)
            ready.set()
            while not stop.is_set():
                await asyncio.sleep(0.05)

    task = asyncio.run_coroutine_threadsafe(collect(), loop.loop)
    ready.wait(10)
    ha.call("light", "turn_on", entity_id=HASS_LIGHT, rgb_color=[255, 160, 0], brightness=128)
    idle_rgb = wait_for(lambda: ha.state(HASS_LIGHT)["attributes"].get("rgb_color"))
    series = Series()

    def red_after(wall: float) -> float | None:
        for change in list(changes[0]):
            if change.data.get("entity_id") != HASS_LIGHT or change.fired < wall:
                continue
            attributes = (change.data.get("new_state") or {}).get("attributes") or {}
            if attributes.get("rgb_color") == [255, 0, 0]:
                return change.fired - wall
        return None

    config = LAMPLIGHTER_CONFIG.format(name="hass", url=ha.lamp_url(HASS_LIGHT), hold=HOLD)
    with daemon("vs_homeassistant.hass", config, workdir / "lamplighter-hass") as d, d.client() as client:
        for number in range(-3, events):
            wall = time.time()
            answer = client.post("/api/events", json={"level": "911", "title": f"bench hass {run_id} #{number}",
                                                      "sender": "bench", "key": f"{run_id}-hass-{number}"})
            took = wait_for(lambda wall=wall: red_after(wall))
            if number >= 0:
                if answer.status_code == 202 and took is not None:
                    series.seconds.append(took)
                else:
                    series.misses.append(f"#{number}: POST {answer.status_code}, red {'seen' if took else 'not'}")
            back = wait_for(lambda: ha.state(HASS_LIGHT)["attributes"].get("rgb_color") == idle_rgb or None,
                            timeout=10, every=0.02)
            if back is None and number >= 0:
                series.misses.append(f"#{number}: not restored within 10 s")
            time.sleep(0.15)
    stop.set()
    task.result(10)
    return {"lamplighter_ms": summary_ms(series.seconds), "misses": series.misses[:20],
            "samples_ms": _rounded(series.seconds)}


def _rounded(seconds: list[float]) -> list[float]:
    """Each sample in ms (10 µs steps), in the order measured."""
    return [round(s * 1000, 2) for s in seconds]


# ---- the run ---------------------------------------------------------------------------------


def run(events: int, names: list[str], logs: Path) -> dict[str, Any]:
    """The whole comparison; Home Assistant's log is kept in `logs`."""
    run_id = f"{time.time():.0f}"
    report: dict[str, Any] = {"events": events, "hold": HOLD, "devices": {}, "problems": []}
    addresses = _loopback()
    loop = Loop()
    with tempfile.TemporaryDirectory(prefix="lamplighter-bench-vs-ha-") as tmp, contextlib.ExitStack() as stack:
        workdir = Path(tmp)
        broker = stack.enter_context(Mosquitto(workdir / "mqtt").start()) if "z2m" in names else None
        devices: list[Device] = []
        for name in names:
            if name == "wled":
                devices.append(stack.enter_context(wled_device(loop, next(addresses))))
            elif name == "hue":
                devices.append(stack.enter_context(hue_device(loop, next(addresses), workdir)))
            elif name == "lifx":
                devices.append(stack.enter_context(lifx_device(next(addresses), workdir)))
            elif name == "z2m" and broker is not None:
                devices.append(stack.enter_context(z2m_device(broker)))
        ha = HomeAssistant(workdir / "hass", extra_config=HA_CONFIG.format(name=Z2M_NAME))
        (ha.workdir / "config").mkdir(parents=True)
        (ha.workdir / "config" / "automations.yaml").write_text("[]\n")
        stack.callback(lambda: shutil.copyfile(ha.log_path, logs / "vs_homeassistant.hass.log"))
        stack.enter_context(ha.start())
        report["problems"] += set_up_ha(ha, devices, broker)
        for problem in report["problems"]:
            print(f"PROBLEM: {problem}")
        for device in devices:
            result = compare(ha, device, events, run_id, workdir)
            report["devices"][device.name] = {"ha_entity": device.ha_entity, **result}
            print_device(device.name, report["devices"][device.name])
        if "hass" in names:
            report["through_hass"] = through_hass(loop, ha, events, run_id, workdir)
            print(format_summary("hass:// (HA in our path) event -> HA state_changed",
                                 report["through_hass"]["lamplighter_ms"]))
    loop.close()
    return report


def print_device(name: str, result: dict[str, Any]) -> None:
    ha, ours = result["home_assistant_ms"], result["lamplighter_ms"]
    if ha is not None:
        print(format_summary(f"{name:5} Home Assistant", ha))
    print(format_summary(f"{name:5} Lamplighter", ours))
    for system, misses in result["misses"].items():
        for miss in misses[:5]:
            print(f"  {name} {system} miss: {miss}")


def table(report: dict[str, Any]) -> list[str]:
    lines = ["| device | HA p50 | HA p99 | ours p50 | ours p99 | ours/HA p50 | ours/HA p99 |",
             "|---|---|---|---|---|---|---|"]
    for name, result in report["devices"].items():
        ha, ours = result["home_assistant_ms"] or {}, result["lamplighter_ms"]
        if not ha.get("count") or not ours.get("count"):
            lines.append(f"| {name} | {_ms(ha, 'p50')} | {_ms(ha, 'p99')} | {_ms(ours, 'p50')} | "
                         f"{_ms(ours, 'p99')} | n/a | n/a |")
            continue
        result["ratio_p50"] = round(ours["p50"] / ha["p50"], 2)
        result["ratio_p99"] = round(ours["p99"] / ha["p99"], 2)
        lines.append(f"| {name} | {ha['p50']:.2f} ms | {ha['p99']:.2f} ms | {ours['p50']:.2f} ms | "
                     f"{ours['p99']:.2f} ms | {result['ratio_p50']:.2f} | {result['ratio_p99']:.2f} |")
    if "through_hass" in report:
        hass = report["through_hass"]["lamplighter_ms"]
        lines.append(f"| hass:// (HA in our path, to HA's state change) | - | - | {_ms(hass, 'p50')} | "
                     f"{_ms(hass, 'p99')} | - | - |")
    return lines


def _ms(summary: dict[str, Any], key: str) -> str:
    return f"{summary[key]:.2f} ms" if summary.get(key) is not None else "none"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200, help="measured events per device and system")
    parser.add_argument("--only", default=",".join((*DEVICES, "hass")), help="comma-separated: wled,hue,lifx,z2m,hass")
    parser.add_argument("--results", type=Path, default=RESULTS / "vs_homeassistant.json", help="where the JSON goes")
    args = parser.parse_args()
    info = machine()
    print(machine_line(info))
    names = [n for n in args.only.split(",") if n]
    unknown = sorted(set(names) - {*DEVICES, "hass"})
    if args.events < 1:
        parser.error(f"--events must be at least 1, not {args.events}")
    if unknown:
        parser.error(f"unknown device(s) {', '.join(unknown)} (known: {', '.join((*DEVICES, 'hass'))})")
    args.results.parent.mkdir(parents=True, exist_ok=True)
    report = run(args.events, names, args.results.parent)
    lines = table(report)
    print(f"event -> device, {args.events} events per device and system, guards off, 911 held {HOLD}:")
    print("\n".join(lines))
    print(machine_line(info))
    report["machine"] = info
    report["table"] = lines
    args.results.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.results}")


if __name__ == "__main__":
    main()
