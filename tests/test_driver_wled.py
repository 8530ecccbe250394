"""`wled://` against a fake WLED strip that speaks the JSON API on loopback (tests/peers/fake_wled.py)."""

from __future__ import annotations

import copy
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from lamplighter.drivers.registry import build_driver
from lamplighter.drivers.wled import RESTORED_SEGMENT_KEYS
from lamplighter.errors import DriverError
from lamplighter.model import Effect, LampState, make_event
from lamplighter.service import Service, SignalAction
from tests.peers.fake_wled import FakeWled, segment
from tests.peers.http_fake import most_in_any_window
from tests.peers.lamps import LAMP, eventually, offline_logs, running_lamp

pytestmark = pytest.mark.real_time  # services and lamps driving real peers on the real clock

RESTORED_TOP_KEYS = ("on", "bri")


@pytest.fixture
async def strip() -> AsyncIterator[FakeWled]:
    async with FakeWled() as wled:
        wled.state["seg"] = [segment(0, 0, 20, [12, 34, 56], fx=9, sx=90, ix=200, pal=5),
                             segment(1, 20, 30, [200, 100, 0], on=False, frz=True, bri=80)]
        yield wled


def url(wled: FakeWled) -> str:
    return f"wled://127.0.0.1:{wled.port}?timeout=0.5"


def restorable(state: dict[str, Any]) -> dict[str, Any]:
    """What exact restore must bring back: power, brightness and each segment's look."""
    return {**{k: state[k] for k in RESTORED_TOP_KEYS},
            "seg": [{k: s[k] for k in (*RESTORED_SEGMENT_KEYS, "id")} for s in state["seg"]]}


def send_911(service: Service) -> int:
    return service.submit(make_event("911", "payments down", received_at=service.clock.now())).id


@pytest.mark.parametrize("was_on", [True, False])
async def test_a_911_shows_red_at_once_on_every_segment_and_the_ack_restores_the_strip_exactly(
        strip: FakeWled, service_factory: Callable[..., Service], was_on: bool) -> None:
    strip.state["on"] = was_on
    before = restorable(copy.deepcopy(strip.state))
    service = service_factory(f"lamps: {{{LAMP}: '{url(strip)}'}}\n")
    async with service.running():
        alarm = send_911(service)
        await eventually(lambda: strip.state["on"] and all(strip.color(i) == [255, 0, 0] for i in (0, 1)))
        _, transition, shown = strip.changes[-1]
        assert transition == 0 and strip.state["transition"] == 7  # this change only: the user's default stays
        assert all(s["fx"] == 0 and s["on"] and not s["frz"] and s["bri"] == 255 for s in shown["seg"])
        assert service.acknowledge(alarm, by="alice") is SignalAction.DONE
        await eventually(lambda: restorable(strip.state) == before)
        assert strip.changes[-1][1] == 0


@pytest.mark.parametrize(("effect", "fx", "second"), [(Effect.BLINK, 1, [0, 0, 0]), (Effect.PULSE, 2, [89, 0, 0])])
async def test_blink_and_pulse_are_wleds_own_blink_and_breathe_effects(
        strip: FakeWled, effect: Effect, fx: int, second: list[int]) -> None:
    driver = build_driver(url(strip))
    try:
        await driver.apply(LampState(on=True, color="#ff0000", effect=effect))
        main = strip.state["seg"][0]
        assert (main["fx"], main["col"][0], main["col"][1]) == (fx, [255, 0, 0], second)
        assert (await driver.read_state()).effect is effect
    finally:
        await driver.close()


async def test_a_burst_reaches_the_strip_as_one_request_at_a_time_at_most_ten_a_second_and_the_latest_wins(
        strip: FakeWled, tmp_path: Any) -> None:
    colors = [f"#{i:02x}{255 - i:02x}40" for i in range(200)]
    async with running_lamp(build_driver(url(strip)), tmp_path) as lamp:
        await lamp.burst(colors)
        await eventually(lambda: strip.color() == [199, 56, 64])
    assert most_in_any_window(strip.posts) <= 10
    assert strip.most_in_flight == 1
    assert len(strip.posts) < len(colors) / 4  # coalesced, never replayed


async def test_a_strip_that_stops_answering_mid_alert_is_offline_then_restored_when_back(
        strip: FakeWled, service_factory: Callable[..., Service], monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    before = restorable(copy.deepcopy(strip.state))
    service = service_factory(f"lamps: {{{LAMP}: '{url(strip)}'}}\n")
    async with service.running():
        alarm = send_911(service)
        await eventually(lambda: strip.color() == [255, 0, 0])
        strip.unplug()
        service.acknowledge(alarm, by="alice")
        await eventually(lambda: not service.lamps[LAMP].online)
        view = service.lamp_views()[0]
        assert "did not answer within 0.5 s" in view.error and view.state is None  # unknown while offline
        strip.plug()
        await eventually(lambda: service.lamps[LAMP].online and restorable(strip.state) == before)
    assert offline_logs(caplog.records) == (1, 1)


async def test_a_strip_answering_something_else_is_a_driver_error(strip: FakeWled) -> None:
    strip.state = {"unexpected": True}
    driver = build_driver(url(strip))
    try:
        with pytest.raises(DriverError, match="not WLED's state"):
            await driver.read_state()
    finally:
        await driver.close()


def state_reads(strip: FakeWled, after: float) -> int:
    return sum(1 for r in strip.received if r.method == "GET" and r.path == "/json/state" and r.arrived > after)


async def test_the_websocket_keeps_the_state_so_the_first_alert_is_sent_without_a_read_and_restores_exactly(
        strip: FakeWled, service_factory: Callable[..., Service]) -> None:
    """Issue 13: WLED pushes its whole state over /ws; the snapshot comes from it, not from a GET in front."""
    service = service_factory(f"lamps: {{{LAMP}: '{url(strip)}'}}\n")
    async with service.running():
        await eventually(lambda: service.lamps[LAMP].memory.contacted and strip.sockets)  # first read done
        # someone changes the strip in the WLED app: the change arrives by push only
        strip.set_state({"bri": 77, "seg": [{"id": 0, "col": [[1, 2, 3]], "fx": 4}]})
        before = restorable(copy.deepcopy(strip.state))
        await eventually(lambda: service.lamps[LAMP].memory.known is not None
                         and service.lamps[LAMP].memory.known.brightness == round(77 * 100 / 255))
        sent_at = time.perf_counter()
        alarm = send_911(service)
        await eventually(lambda: strip.color() == [255, 0, 0])
        assert state_reads(strip, sent_at) == 0  # no read in front of the alert
        service.acknowledge(alarm, by="alice")
        await eventually(lambda: restorable(strip.state) == before)  # back to what the app had set


async def test_while_the_websocket_is_down_the_snapshot_is_read_first(
        strip: FakeWled, service_factory: Callable[..., Service]) -> None:
    service = service_factory(f"lamps: {{{LAMP}: '{url(strip)}'}}\n")
    async with service.running():
        await eventually(lambda: service.lamps[LAMP].online and service.lamps[LAMP].memory.known is not None)
        driver = service.lamps[LAMP].driver
        stopped_at = time.perf_counter()
        await driver._stream.stop()  # the stream is gone (as when the strip's websocket is disabled)
        await eventually(lambda: service.lamps[LAMP].memory.known is None)
        await eventually(lambda: state_reads(strip, stopped_at) == 1)  # is it still there? looked at once
        before = restorable(copy.deepcopy(strip.state))
        sent_at = time.perf_counter()
        alarm = send_911(service)
        await eventually(lambda: strip.color() == [255, 0, 0])
        assert state_reads(strip, sent_at) == 1  # read once, for the snapshot
        service.acknowledge(alarm, by="alice")
        await eventually(lambda: restorable(strip.state) == before)
