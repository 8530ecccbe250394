"""`lifx://` through lifx-async against the real LIFX emulator on loopback (tests/peers/lifx.py)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from lifx import HSBK

from lamplighter.drivers.registry import build_driver
from lamplighter.model import Effect, LampState, make_event
from lamplighter.service import Service, SignalAction
from tests.peers.http_fake import most_in_any_window
from tests.peers.lamps import LAMP, RED, eventually, offline_logs, running_lamp
from tests.peers.lifx import Hsbk, LifxEmulator

pytestmark = pytest.mark.real_time  # services and lamps driving real peers on the real clock

WARM_DIM: Hsbk = (5461, 19661, 24117, 2700)  # warm white at 36.8 %: kelvin and brightness a LampState rounds
RED_HSBK: Hsbk = (0, 65535, 65535, 3500)
FULL = 65535
SET_WAVEFORM = 103


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LifxEmulator]:
    with LifxEmulator(tmp_path_factory.mktemp("lifx")).start() as started:
        yield started


@pytest.fixture
def bulb(emulator: LifxEmulator) -> LifxEmulator:
    emulator.plug()
    emulator.set(FULL, WARM_DIM)
    return emulator


def service_with(service_factory: Callable[..., Service], bulb: LifxEmulator) -> Service:
    return service_factory(f"lamps: {{{LAMP}: '{bulb.lamp_url(timeout='0.5')}'}}\n")


def send_911(service: Service) -> int:
    return service.submit(make_event("911", "payments down", received_at=service.clock.now())).id


def protocol(hsbk: HSBK) -> Hsbk:
    wire = hsbk.to_protocol()
    return wire.hue, wire.saturation, wire.brightness, wire.kelvin


async def brightness_seen(bulb: LifxEmulator, seconds: float) -> set[int]:
    """The bulb's brightness sampled every 50 ms for `seconds`."""
    seen: set[int] = set()
    for _ in range(round(seconds / 0.05)):
        seen.add(bulb.hsbk()[2])
        await asyncio.sleep(0.05)
    return seen


@pytest.mark.parametrize("power", [FULL, 0])
async def test_a_911_turns_the_bulb_red_without_a_fade_and_the_ack_restores_it_exactly(
        bulb: LifxEmulator, service_factory: Callable[..., Service], power: int) -> None:
    bulb.set(power, WARM_DIM)
    service = service_with(service_factory, bulb)
    async with service.running():
        alarm = send_911(service)
        await eventually(lambda: bulb.hsbk() != WARM_DIM)
        assert bulb.hsbk() == RED_HSBK  # the first colour the bulb shows is red: no fade through others
        await eventually(lambda: bulb.power() == FULL)
        assert service.acknowledge(alarm, by="alice") is SignalAction.DONE
        await eventually(lambda: (bulb.power(), bulb.hsbk()) == (power, WARM_DIM))


@pytest.mark.parametrize(("effect", "seconds"), [(Effect.BLINK, 1.2), (Effect.PULSE, 2.2)])
async def test_blink_and_pulse_are_the_bulbs_own_waveforms_and_the_next_state_stops_them(
        bulb: LifxEmulator, effect: Effect, seconds: float) -> None:
    driver = build_driver(bulb.lamp_url())
    try:
        waveforms = bulb.received().get(SET_WAVEFORM, 0)
        await driver.apply(LampState(on=True, color="#ff0000", effect=effect))
        assert bulb.received()[SET_WAVEFORM] == waveforms + 1
        seen = await brightness_seen(bulb, seconds)
        assert max(seen) > 0.9 * FULL and min(seen) < (0.1 if effect is Effect.BLINK else 0.6) * FULL
        await driver.apply(RED)
        assert await brightness_seen(bulb, 0.6) == {FULL}
    finally:
        await driver.close()


async def test_a_burst_reaches_the_bulb_as_at_most_20_messages_a_second_and_the_latest_wins(
        bulb: LifxEmulator, tmp_path: Path) -> None:
    colors = [f"#{i:02x}40{255 - i:02x}" for i in range(199)] + ["#0000ff"]
    arrivals: set[tuple[float, int]] = set()

    async def collect() -> None:
        while True:
            arrivals.update(bulb.recent_arrivals())
            await asyncio.sleep(0.2)

    async with running_lamp(build_driver(bulb.lamp_url()), tmp_path) as lamp:
        collector = asyncio.create_task(collect())
        await lamp.burst(colors)
        await eventually(lambda: bulb.hsbk() == protocol(HSBK(240, 1.0, 1.0, 3500)))
        collector.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await collector
    arrivals.update(bulb.recent_arrivals())
    assert most_in_any_window([at for at, _ in arrivals]) <= 20
    assert len(arrivals) < len(colors)  # coalesced, never replayed


async def test_a_bulb_that_stops_answering_mid_alert_is_offline_then_restored_when_back(
        bulb: LifxEmulator, service_factory: Callable[..., Service], monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    service = service_with(service_factory, bulb)
    async with service.running():
        alarm = send_911(service)
        await eventually(lambda: bulb.hsbk() == RED_HSBK)
        bulb.unplug()
        service.acknowledge(alarm, by="alice")
        await eventually(lambda: not service.lamps[LAMP].online)
        assert "did not answer within 0.5 s" in service.lamp_views()[0].error
        bulb.plug()
        await eventually(lambda: service.lamps[LAMP].online and bulb.hsbk() == WARM_DIM)
    assert offline_logs(caplog.records) == (1, 1)


async def test_without_a_serial_the_bulb_is_asked_for_it(bulb: LifxEmulator) -> None:
    driver = build_driver(f"lifx://127.0.0.1:{bulb.port}?timeout=1")
    try:
        shown = await driver.read_state()
        assert (shown.on, shown.brightness) == (True, 37)
    finally:
        await driver.close()
