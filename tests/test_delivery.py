"""Delivery verification and fallback: a broken alert light must never look like a quiet evening.

A lamp that can report its state is read back after each new look; one that shows
something else is reported (and sent the look once more), and a level whose lamps are all
offline or not showing it uses its fallback: other lamps or sirens, and notifications.
The devices here are recording lamps behind the real lamp controllers; notifications go
through Apprise to a JSON endpoint on loopback.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable

import pytest

from lamplighter.drivers.base import LampUrl
from lamplighter.drivers.virtual import VirtualDriver
from lamplighter.errors import DeviceOffline
from lamplighter.model import LAMP_OFF, LampState, Signal, make_event
from lamplighter.rules.delivery import reached
from lamplighter.service import Service
from tests.peers.lamps import eventually
from tests.peers.notify_receiver import Receiver, notification_receiver

pytestmark = pytest.mark.real_time  # the fallback notices go to a real HTTP receiver

RED = LampState(on=True, color="#ff0000")
GREEN = LampState(on=True, color="#00ff00")


@pytest.mark.parametrize(("sent", "shown", "ok"), [
    (RED, RED, True),
    (RED, LampState(on=True, color="#ff2a00", brightness=97), True),  # a Hue bulb's gamut, rounded
    (RED, LampState(on=True, color="#ff0000", brightness=35), True),  # caught at a pulse's dim end
    (RED, GREEN, False),
    (RED, LampState(on=True, color="#ffffff"), False),  # still white: the colour never arrived
    (RED, LAMP_OFF, False),
    (LAMP_OFF, LampState(on=False, color="#123456"), True),
    (LAMP_OFF, RED, False),
    (LampState(on=True, color="#ffd8a8"), LampState(on=True, color="#fff0e0"), True),  # whites alike
    (LampState(on=True, color="#ff0010"), LampState(on=True, color="#ff1000"), True),  # across 0 degrees
])
def test_a_read_back_reaches_the_sent_look_when_the_eye_would_say_so(
        sent: LampState, shown: LampState, ok: bool) -> None:
    assert reached(sent, shown) is ok


class StuckBulb(VirtualDriver):
    """A light that answers but keeps showing green whatever it is told, until it is fixed."""

    scheme = "virtual"
    verify_after = 0.05
    calm_interval = 0.0

    def __init__(self, name: str) -> None:
        super().__init__(LampUrl.parse(f"virtual://{name}"), GREEN)
        self.stuck = True
        self.told: list[LampState] = []

    async def apply(self, state: LampState, showing: Signal | None = None) -> None:
        self.told.append(state)
        if not self.stuck:
            await super().apply(state, showing)


class UnpluggedBulb(VirtualDriver):
    scheme = "virtual"

    def __init__(self, name: str) -> None:
        super().__init__(LampUrl.parse(f"virtual://{name}"), LAMP_OFF)

    async def apply(self, state: LampState, showing: Signal | None = None) -> None:
        raise DeviceOffline(f"{self.url()} did not answer within 2 s")

    async def read_state(self) -> LampState:
        raise DeviceOffline(f"{self.url()} did not answer within 2 s")


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with notification_receiver() as found:
        yield found


def fallback_config(receiver: Receiver) -> str:
    return ("lamps: {desk: 'virtual://desk', hall: 'virtual://hall'}\n"
            f"levels: {{'911': {{lamps: [desk], fallback: [hall, 'json://127.0.0.1:{receiver.port}/oncall']}}}}\n")


def send_911(service: Service) -> int:
    receipt = service.submit(make_event("911", "payments down", received_at=service.clock.now()))
    assert receipt.id is not None
    return receipt.id


async def test_a_lamp_that_does_not_show_the_alert_is_reported_sent_it_once_more_and_shown_again_when_fixed(
        service_factory: Callable[..., Service], caplog: pytest.LogCaptureFixture) -> None:
    bulb = StuckBulb("desk")
    service = service_factory("", drivers={"desk": bulb})
    async with service.running():
        alarm = send_911(service)
        await eventually(lambda: not service.lamp_views()[0].reached)
        view = service.lamp_views()[0]
        assert view.online and view.error == "was sent #ff0000 at 100 % but shows #00ff00 at 100 %"
        await eventually(lambda: len(bulb.told) == 2)  # one more try, then it stays reported
        bulb.stuck = False
        service.acknowledge(alarm, by="alice")
        send_911(service)  # a new alert: the lamp now takes it
        await eventually(lambda: service.lamp_views()[0].reached)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert sum("but shows" in w for w in warnings) == 1
    assert sum("shows what it was sent again" in w for w in warnings) == 1


async def test_a_911_whose_lamp_is_offline_uses_the_fallback_lamp_and_notifies_once(
        service_factory: Callable[..., Service], receiver: Receiver) -> None:
    hall = VirtualDriver(LampUrl.parse("virtual://hall"), LAMP_OFF)
    service = service_factory(fallback_config(receiver), drivers={"desk": UnpluggedBulb("desk"), "hall": hall})
    async with service.running():
        await eventually(lambda: not service.lamps["desk"].online)
        alarm = send_911(service)
        await eventually(lambda: hall.state == RED and receiver.received)
        send_911(service)  # the same incident again: no second notice
        service.acknowledge(alarm, by="alice")
        await eventually(lambda: hall.state == LAMP_OFF)
    [notice] = receiver.received
    assert notice["title"] == "911: payments down"
    assert "cannot show this on its lamps (desk: virtual://desk did not answer within 2 s)" in notice["message"]


async def test_a_lamp_showing_the_wrong_colour_also_triggers_the_fallback(
        service_factory: Callable[..., Service], receiver: Receiver) -> None:
    hall = VirtualDriver(LampUrl.parse("virtual://hall"), LAMP_OFF)
    service = service_factory(fallback_config(receiver), drivers={"desk": StuckBulb("desk"), "hall": hall})
    async with service.running():
        send_911(service)
        await eventually(lambda: hall.state == RED and receiver.received)
    assert "desk: was sent #ff0000 at 100 % but shows #00ff00 at 100 %" in receiver.received[0]["message"]


async def test_no_fallback_while_a_lamp_shows_the_alert(
        service_factory: Callable[..., Service], receiver: Receiver) -> None:
    hall = VirtualDriver(LampUrl.parse("virtual://hall"), LAMP_OFF)
    desk = VirtualDriver(LampUrl.parse("virtual://desk"), LAMP_OFF)
    service = service_factory(fallback_config(receiver), drivers={"desk": desk, "hall": hall})
    async with service.running():
        send_911(service)
        await eventually(lambda: desk.state == RED)
        await asyncio.sleep(0.1)
    assert hall.state == LAMP_OFF and receiver.received == []


def test_check_names_a_fallback_that_is_neither_a_lamp_nor_a_url(tmp_path: pytest.TempPathFactory) -> None:
    from lamplighter.config import load_config
    from lamplighter.errors import ConfigError

    path = tmp_path / "l.yaml"  # type: ignore[operator]
    path.write_text("lamps: {desk: 'virtual://desk'}\nlevels:\n  '911':\n    fallback: [hal]\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert any("no lamp or siren named 'hal'" in message and ":4" in place for place, message in caught.value.problems)
