"""Blink and pulse on lamps that lack them, and a calm room: frames and pacing, in the rules and in the controller.

The frame table runs on a fake clock (pure functions). The controller tests run a real
service in real time against a recording light that, like most bulbs, has no blink of its
own; they count and order what the light received, with tolerant windows.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from itertools import pairwise
from pathlib import Path

import pytest

from lamplighter.config import parse_config
from lamplighter.drivers.base import LampUrl
from lamplighter.drivers.virtual import VirtualDriver
from lamplighter.errors import ConfigError
from lamplighter.model import LAMP_OFF, Effect, LampState, Signal, make_event
from lamplighter.rules.effects import emulation
from lamplighter.service import Service
from tests.conftest import make_config
from tests.peers.http_fake import most_in_any_window
from tests.peers.lamps import eventually, running_lamp

pytestmark = pytest.mark.real_time  # the controller tests run a real service in real time

RED = LampState(on=True, color="#ff0000")
RED_BLINK = LampState(on=True, color="#ff0000", effect=Effect.BLINK)
PURPLE_PULSE = LampState(on=True, color="#8000ff", brightness=60, effect=Effect.PULSE)
SOLID_ONLY = frozenset({Effect.SOLID})


class PlainBulb(VirtualDriver):
    """A light in a room with no effects of its own, that records every command with its loop time."""

    scheme = "virtual"
    calm_interval = 1.0
    min_interval = 0.05
    effects = SOLID_ONLY

    def __init__(self, name: str = "desk") -> None:
        super().__init__(LampUrl.parse(f"virtual://{name}"), LAMP_OFF)
        self.received: list[tuple[float, LampState]] = []

    async def apply(self, state: LampState, showing: Signal | None = None) -> None:
        self.received.append((asyncio.get_running_loop().time(), state))
        await super().apply(state, showing)

    def looks(self) -> list[LampState]:
        return [state for _, state in self.received]


@pytest.mark.parametrize(("elapsed", "bright"), [(0.0, True), (0.49, True), (0.5, False), (0.99, False),
                                                 (1.0, True), (7.25, True), (7.75, False)])
def test_an_emulated_blink_is_the_colour_for_half_a_second_then_dark(elapsed: float, bright: bool) -> None:
    frames = emulation(RED_BLINK, SOLID_ONLY, min_interval=0.1)
    assert frames is not None
    frame, next_in = frames.at(elapsed)
    assert frame == (RED if bright else LampState(on=False, color="#ff0000"))
    assert frame.effect is Effect.SOLID
    assert 0 < next_in <= 0.5 and abs((elapsed + next_in) % 0.5) < 1e-9


def test_an_emulated_pulse_dims_to_35_percent_for_a_second() -> None:
    frames = emulation(PURPLE_PULSE, SOLID_ONLY, min_interval=0.1)
    assert frames is not None
    assert frames.at(0.2)[0] == LampState(on=True, color="#8000ff", brightness=60)
    assert frames.at(1.2)[0] == LampState(on=True, color="#8000ff", brightness=21)
    assert frames.half_period == 1.0


def test_nothing_is_emulated_for_a_native_effect_a_solid_look_or_off() -> None:
    assert emulation(RED_BLINK, frozenset(Effect), 0.1) is None
    assert emulation(RED, SOLID_ONLY, 0.1) is None
    assert emulation(LampState(on=False, effect=Effect.BLINK), SOLID_ONLY, 0.1) is None


def test_a_slow_device_gets_slower_frames_never_more_than_it_accepts() -> None:
    frames = emulation(RED_BLINK, SOLID_ONLY, min_interval=2.0)
    assert frames is not None and frames.half_period == 2.0


def send(service: Service, level: str, title: str) -> int:
    receipt = service.submit(make_event(level, title, received_at=service.clock.now()))
    assert receipt.id is not None
    return receipt.id


async def test_a_blinking_911_on_a_bulb_without_blink_alternates_red_and_dark_until_acknowledged(
        service_factory: Callable[..., Service]) -> None:
    bulb = PlainBulb()
    service = service_factory("levels: {'911': {effect: blink}}\n", drivers={"desk": bulb})
    async with service.running():
        alarm = send(service, "911", "payments down")
        await eventually(lambda: len(bulb.received) >= 5)
        assert service.lamp_views()[0].state == RED_BLINK  # the API shows the look, not the frames
        service.acknowledge(alarm, by="alice")
        await eventually(lambda: bulb.received[-1][1] == LAMP_OFF)
        stopped = len(bulb.received)
        await asyncio.sleep(1.2)
        assert len(bulb.received) == stopped  # no frame after the restore
    frames = bulb.looks()[:-1]
    assert frames[0] == RED
    assert all(a != b for a, b in pairwise(frames))  # red, dark, red, dark...
    assert set(frames) == {RED, LampState(on=False, color="#ff0000")}
    gaps = [b - a for (a, _), (b, _) in pairwise(bulb.received[:-1])]
    assert all(0.3 < gap < 1.5 for gap in gaps), gaps  # half a second each, give or take a busy machine


async def test_a_burst_of_different_looks_changes_a_light_at_most_about_once_a_second_and_ends_on_the_latest(
        tmp_path: Path) -> None:
    bulb = PlainBulb()
    colors = [f"#{i:02x}00ff" for i in range(60)]
    async with running_lamp(bulb, tmp_path) as lamp:
        await lamp.burst(colors)
        await eventually(lambda: bulb.looks()[-1].color == colors[-1])
    changes = [at for at, _ in bulb.received]
    assert most_in_any_window(changes, window=0.95) <= 1, changes
    assert 2 <= len(changes) <= 4  # 1.5 s of changes: the first at once, then about one a second


async def test_a_higher_signal_takes_the_light_at_once_even_right_after_a_change(
        service_factory: Callable[..., Service]) -> None:
    bulb = PlainBulb()
    service = service_factory("", drivers={"desk": bulb})
    async with service.running():
        send(service, "912", "disk filling")
        await eventually(lambda: len(bulb.received) == 1)
        send(service, "911", "payments down")
        await eventually(lambda: len(bulb.received) == 2)
    (yellow_at, _), (red_at, red) = bulb.received
    assert red == RED and red_at - yellow_at < 0.5  # not held back for the calm second


async def test_a_siren_without_effects_is_never_toggled_by_an_emulated_blink(
        service_factory: Callable[..., Service]) -> None:
    siren = PlainBulb("hall")
    yaml = "sirens: {hall: 'virtual://hall'}\nlevels: {'911': {effect: blink, escalate_after: 0s}}\n"
    service = service_factory(yaml, drivers={"hall": siren})
    async with service.running():
        send(service, "911", "payments down")
        await eventually(lambda: siren.received)
        await asyncio.sleep(1.3)
    assert siren.looks() == [RED_BLINK]


def test_the_default_levels_differ_in_rhythm_not_only_in_colour() -> None:
    levels = parse_config("", env={}).resolved_levels()
    rhythms = {name: emulation(levels[name].look, SOLID_ONLY, min_interval=0.1) for name in ("911", "912", "door")}
    assert rhythms["door"] is None  # steady
    assert rhythms["911"] is not None and rhythms["911"].half_period == 0.5  # blinks: on and dark
    assert not rhythms["911"].dim.on
    assert rhythms["912"] is not None and rhythms["912"].half_period == 1.0  # pulses slowly, never dark
    assert rhythms["912"].dim.on and rhythms["912"].dim.brightness == 35


def test_the_colorblind_palette_takes_okabe_ito_colours_and_keeps_the_rhythms() -> None:
    levels = parse_config("palette: colorblind\n", env={}).resolved_levels()
    assert {name: (levels[name].color, levels[name].effect) for name in ("911", "912", "door")} == {
        "911": ("#d55e00", Effect.BLINK), "912": ("#f0e442", Effect.PULSE), "door": ("#0072b2", Effect.SOLID)}
    own = parse_config("palette: colorblind\nlevels: {'911': {color: magenta}}\n", env={}).resolved_levels()
    assert own["911"].color == "#ff00ff" and own["door"].color == "#0072b2"  # a level's own colour wins


def test_an_unknown_palette_is_named_with_the_choices() -> None:
    with pytest.raises(ConfigError) as raised:
        parse_config("palette: pastel\n", env={}, name="ll.yaml")
    assert raised.value.problems == [("ll.yaml:1 palette", "Input should be 'default' or 'colorblind'")]


async def test_the_default_912_pulses_on_a_bulb_without_effects(tmp_path: Path) -> None:
    bulb = PlainBulb()
    service = Service(make_config(tmp_path, solid=False), drivers={"desk": bulb})
    async with service.running():
        send(service, "912", "disk filling")
        await eventually(lambda: len(bulb.received) >= 3, timeout=5)
    bright, dim, again = bulb.looks()[:3]
    assert bright == LampState(on=True, color="#ffd000") and again == bright
    assert dim == LampState(on=True, color="#ffd000", brightness=35)
