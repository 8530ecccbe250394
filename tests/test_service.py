"""The service with real lamp controllers and virtual lamps, on virtual time (tests/virtual_time.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from lamplighter.drivers.base import LampUrl
from lamplighter.drivers.virtual import VirtualDriver
from lamplighter.errors import DeviceOffline, StoreError
from lamplighter.model import LAMP_OFF, LampState, Outcome, Signal, make_event
from lamplighter.service import Service, SignalAction
from tests.virtual_time import LoopClock

pytestmark = pytest.mark.virtual_time

RED = LampState(on=True, color="#ff0000")
YELLOW = LampState(on=True, color="#ffd000")
WARM = LampState(on=True, color="#ffd8a8", brightness=40)
SHELF = "lamps: {desk: 'virtual://desk?on=true&color=warmwhite&brightness=40'}\n"

Start = Callable[..., Awaitable[Service]]
HEALTH_CHECK = 15.0  # an idle lamp that stops answering is offline within this (issue 11)


def state(service: Service, lamp: str = "desk") -> LampState:
    driver = service.lamps[lamp].driver
    assert isinstance(driver, VirtualDriver)
    return driver.state


async def eventually(check: Callable[[], Any], timeout: float = 3.0) -> None:
    """Wait (in real time, for the lamp tasks) until `check()` holds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.005)


def send(service: Service, level: str, title: str = "t", **fields: Any) -> Any:
    return service.submit(make_event(level, title, received_at=service.clock.now(), **fields))


async def test_a_911_turns_the_lamp_red_and_it_returns_exactly_after_the_hold(running: Start, clock: LoopClock) -> None:
    service = await running(SHELF)
    await eventually(lambda: state(service) == WARM)
    receipt = send(service, "911", "payments down")
    assert receipt.outcome is Outcome.SHOWN
    await eventually(lambda: state(service) == RED)
    await asyncio.sleep(9.9)
    await asyncio.sleep(0.05)
    assert state(service) == RED
    await asyncio.sleep(0.1)
    await eventually(lambda: state(service) == WARM)


async def test_off_stays_off(running: Start, clock: LoopClock) -> None:
    service = await running()
    send(service, "912")
    await eventually(lambda: state(service) == YELLOW)
    await asyncio.sleep(10)
    await eventually(lambda: state(service) == LAMP_OFF)


async def test_911_preempts_912_which_shows_again_and_one_snapshot_serves_both(
        running: Start, clock: LoopClock) -> None:
    service = await running(SHELF + "levels: {912: {hold: 1m}}\n")
    send(service, "912", "disk filling")
    await eventually(lambda: state(service) == YELLOW)
    alarm = send(service, "911", "payments down")
    await eventually(lambda: state(service) == RED)
    assert service.lamps["desk"].snapshot == WARM  # not overwritten by the 912's yellow
    assert service.acknowledge(alarm.id, by="alice") is SignalAction.DONE
    await eventually(lambda: state(service) == YELLOW)
    await asyncio.sleep(60)
    await eventually(lambda: state(service) == WARM)
    assert service.lamps["desk"].snapshot is None


async def test_acknowledge_by_a_duplicate_ends_the_signal_and_reports_unknown_or_ended(running: Start) -> None:
    service = await running()
    first = send(service, "911", "db down")
    dup = send(service, "911", "db down")
    assert dup.outcome is Outcome.DEDUPLICATED and dup.signal_id == first.id
    await eventually(lambda: state(service) == RED)
    acknowledged_at = service.clock.now()
    assert service.acknowledge(dup.id, by="bob") is SignalAction.DONE
    await eventually(lambda: state(service) == LAMP_OFF)
    assert service.acknowledge(first.id, by="bob") is SignalAction.NOT_ACTIVE
    assert service.acknowledge(999, by="bob") is SignalAction.UNKNOWN
    assert service.store.signal_end(first.id) == (acknowledged_at, "acknowledged by bob")


async def test_every_event_is_stored_with_outcome_and_reasons(running: Start) -> None:
    service = await running()
    send(service, "911", "a")
    send(service, "911", "a")
    send(service, "911", "a", status="resolved")
    events = service.store.recent_events(10)
    assert [(e.id, e.outcome) for e in events] == [(3, "resolved"), (2, "deduplicated"), (1, "shown")]
    assert events[0].reasons == ("ended signal 1",)
    assert events[1].signal_id == 1


async def test_a_restart_resumes_active_signals_and_the_snapshot(service_factory: Callable[..., Service],
                                                                 clock: LoopClock) -> None:
    config = SHELF + "levels: {911: {hold: until_ack}}\n"
    first = service_factory(config)
    await first.start()
    alarm = send(first, "911", "payments down")
    send(first, "912", "short one")
    await eventually(lambda: state(first) == RED)
    await first.stop()  # the crash test does the same with SIGKILL against a real process

    await asyncio.sleep(3600)  # an hour later: the 912 ran out while we were down, the 911 did not
    restarted_at = clock.now()
    second = service_factory(config)
    await second.start()
    try:
        await eventually(lambda: state(second) == RED)
        assert list(second.signals) == [alarm.id]
        assert second.store.signal_end(alarm.id + 1) == (restarted_at, "expired")
        assert second.acknowledge(alarm.id, by="alice") is SignalAction.DONE
        await eventually(lambda: state(second) == WARM)
    finally:
        await second.stop()


async def test_dedup_memory_survives_a_restart(service_factory: Callable[..., Service], clock: LoopClock) -> None:
    first = service_factory("")
    await first.start()
    send(first, "912", "disk full", key="disk")
    await first.stop()
    await asyncio.sleep(30)
    second = service_factory("")
    await second.start()
    try:
        assert send(second, "912", "disk full", key="disk").outcome is Outcome.DEDUPLICATED
    finally:
        await second.stop()


async def test_a_store_failure_refuses_the_event_and_changes_nothing(running: Start) -> None:
    service = await running()
    service.store.close()
    with pytest.raises(StoreError, match="cannot write"):
        send(service, "911", "payments down")
    assert service.signals == {}
    assert service.router.last_seen == {}


class FlakyLamp(VirtualDriver):
    """A virtual lamp that can be unplugged."""

    down = False  # commands fail
    unplugged = False  # reads fail too

    async def apply(self, state: LampState, showing: Signal | None = None) -> None:
        if self.down or self.unplugged:
            raise DeviceOffline("no answer from the lamp")
        await super().apply(state, showing)

    async def read_state(self) -> LampState:
        if self.unplugged:
            raise DeviceOffline("no answer from the lamp")
        return await super().read_state()


async def test_an_offline_lamp_is_reported_once_and_reconciled_when_back(
        service_factory: Callable[..., Service], clock: LoopClock,
        caplog: pytest.LogCaptureFixture) -> None:
    flaky = FlakyLamp(LampUrl.parse("virtual://desk"), LAMP_OFF)
    service = service_factory("", drivers={"desk": flaky})
    await service.start()
    try:
        flaky.down = True
        send(service, "911", "payments down")
        await eventually(lambda: not service.lamps["desk"].online)
        view = service.lamp_views()[0]
        assert view.error == "no answer from the lamp" and view.state is None  # what it shows is unknown
        await asyncio.sleep(0.1)  # several retries while down ...
        offline_logs = [r for r in caplog.records if "is offline" in r.getMessage()]
        assert len(offline_logs) == 1  # ... but one log line
        flaky.down = False
        await eventually(lambda: flaky.state == RED and service.lamps["desk"].online)
        assert sum("back online" in r.getMessage() for r in caplog.records) == 1
    finally:
        await service.stop()


async def test_watchers_see_each_change_once(running: Start, clock: LoopClock) -> None:
    service = await running()
    await eventually(lambda: service.lamps["desk"].actual is not None)
    queue = service.watch("desk")
    assert (await queue.get()).state == LAMP_OFF
    send(service, "911", "x")
    view = await asyncio.wait_for(queue.get(), 2)
    assert view.state == RED and view.showing is not None and view.showing.title == "x"
    await asyncio.sleep(10)
    view = await asyncio.wait_for(queue.get(), 2)
    assert view.state == LAMP_OFF and view.showing is None
    await asyncio.sleep(0.05)
    assert queue.empty()
    service.end_watches()
    assert await asyncio.wait_for(queue.get(), 1) is None  # the stream ends when the daemon stops


async def test_a_burst_is_coalesced_to_the_latest_state(running: Start) -> None:
    service = await running("guards: {rate_limit: {per_sender: null, per_source: null}}\n"
                            "levels: {low: {color: blue, priority: 1}, mid: {color: cyan, priority: 2}}\n")
    for i in range(50):
        send(service, ["low", "mid", "912"][i % 3], f"e{i}")
    send(service, "911", "last")
    await eventually(lambda: state(service) == RED)
    applies = service.metrics.lamp_applies.labels("desk")._value.get()
    assert applies <= 3  # not 51: the lamp is driven to the latest state, never through the backlog


async def test_a_snoozed_signal_hides_and_comes_back_if_still_active(running: Start, clock: LoopClock) -> None:
    service = await running(SHELF + "levels: {911: {hold: until_ack}}\n")
    alarm = send(service, "911", "payments down")
    await eventually(lambda: state(service) == RED)
    assert service.snooze_signal(alarm.id, 600) is SignalAction.DONE
    await eventually(lambda: state(service) == WARM)
    await asyncio.sleep(599)
    await asyncio.sleep(0.05)
    assert state(service) == WARM
    await asyncio.sleep(1)
    await eventually(lambda: state(service) == RED)  # still not acknowledged: it is back
    assert service.snooze_signal(999, 60) is SignalAction.UNKNOWN


async def test_snooze_all_quiets_new_events_but_not_911_and_survives_a_restart(
        service_factory: Callable[..., Service], clock: LoopClock) -> None:
    config = SHELF + "levels: {912: {hold: until_ack}}\n"
    first = service_factory(config)
    await first.start()
    send(first, "912", "disk filling")
    await eventually(lambda: state(first) == YELLOW)
    first.snooze_all(1800, by="alice")
    await eventually(lambda: state(first) == WARM)
    quiet = send(first, "door", "someone at the door")
    assert quiet.outcome is Outcome.QUIET and quiet.reasons[0].startswith("snoozed by alice until ")
    assert send(first, "911", "payments down").outcome is Outcome.SHOWN  # 911 bypasses quiet hours and snoozes
    await first.stop()

    await asyncio.sleep(60)
    second = service_factory(config)
    await second.start()
    try:
        assert send(second, "door", "again").outcome is Outcome.QUIET
        second.end_snooze()
        assert send(second, "door", "and again").outcome is Outcome.SHOWN
        assert second.signals[1].snoozed_until is None  # the 912 is visible again
    finally:
        await second.stop()


async def test_activity_tells_live_views_what_changed(running: Start, clock: LoopClock) -> None:
    service = await running()
    activity = service.activity.subscribe()
    first = send(service, "911", "x")
    send(service, "912", "y")
    service.acknowledge(first.id, by="alice")
    await asyncio.sleep(10.1)
    seen = [activity.get_nowait() for _ in range(activity.qsize())]
    assert [(a.kind, a.event_id) for a in seen if a] == [("event", 1), ("event", 2), ("acknowledged", 1),
                                                          ("expired", 2)]
    service.end_watches()
    assert activity.get_nowait() is None


SIREN = SHELF + "sirens: {hall: virtual://hall}\n"


def siren_on(service: Service) -> bool:
    return state(service, "hall").on


async def test_an_unacknowledged_911_sounds_the_siren_after_its_delay_and_ack_silences_it(
        running: Start, clock: LoopClock) -> None:
    service = await running(SIREN)
    alarm = send(service, "911", "payments down")
    await eventually(lambda: state(service) == RED)
    await asyncio.sleep(119)
    await asyncio.sleep(0.05)
    assert not siren_on(service) and state(service) == RED  # with a siren, 911 waits for an ack
    await asyncio.sleep(1)
    await eventually(lambda: siren_on(service))
    assert service.lamp_views()[1].kind == "siren"
    assert service.acknowledge(alarm.id, by="alice") is SignalAction.DONE
    await eventually(lambda: not siren_on(service) and state(service) == WARM)


async def test_an_acknowledged_or_resolved_alert_never_sounds_the_siren(running: Start, clock: LoopClock) -> None:
    service = await running(SIREN)
    acked = send(service, "911", "db down")
    send(service, "911", "api down", key="api")
    service.acknowledge(acked.id, by="bob")
    send(service, "911", "api up", key="api", status="resolved")
    send(service, "912", "disk filling")  # 912 has no sirens
    await asyncio.sleep(600)
    await asyncio.sleep(0.05)
    assert not siren_on(service)


async def test_an_escalated_alert_still_sounds_after_a_restart(
        service_factory: Callable[..., Service], clock: LoopClock) -> None:
    first = service_factory(SIREN)
    await first.start()
    alarm = send(first, "911", "payments down")
    await first.stop()
    await asyncio.sleep(300)
    second = service_factory(SIREN)
    await second.start()
    try:
        await eventually(lambda: siren_on(second))
        second.acknowledge(alarm.id, by="alice")
        await eventually(lambda: not siren_on(second))
    finally:
        await second.stop()


async def test_after_a_restart_a_resolved_key_fires_again_and_an_open_one_stays_quiet(
        service_factory: Callable[..., Service], clock: LoopClock) -> None:
    first = service_factory("")
    await first.start()
    send(first, "912", "disk full", key="disk")
    send(first, "912", "api slow", key="api")
    send(first, "912", "api ok", key="api", status="resolved")
    await first.stop()
    await asyncio.sleep(3600)
    second = service_factory("")
    await second.start()
    try:
        assert send(second, "912", "disk still full", key="disk", sender="b").outcome is Outcome.DEDUPLICATED
        assert send(second, "912", "api slow again", key="api", sender="c").outcome is Outcome.SHOWN
    finally:
        await second.stop()


class DeadLamp(VirtualDriver):
    """A lamp that never answers at all."""

    async def read_state(self) -> LampState:
        raise DeviceOffline("no route to host")

    async def apply(self, state: LampState, showing: Signal | None = None) -> None:
        raise DeviceOffline("no route to host")


class BuggyLamp(VirtualDriver):
    """A driver with a bug: it raises something that is not a DriverError, once."""

    broken = True

    async def apply(self, state: LampState, showing: Signal | None = None) -> None:
        if self.broken:
            self.broken = False
            raise KeyError("colour")
        await super().apply(state, showing)


async def test_a_lamp_that_never_answers_is_never_shown_online(
        service_factory: Callable[..., Service]) -> None:
    service = service_factory("", drivers={"desk": DeadLamp(LampUrl.parse("virtual://desk"), LAMP_OFF)})
    await service.start()
    try:
        send(service, "911", "payments down")
        await asyncio.sleep(0.2)  # start, the alert, and several retries
        [view] = service.lamp_views()
        assert (view.online, view.error, view.state) == (False, "no route to host", None)
    finally:
        await service.stop()


async def test_an_idle_lamp_is_checked_and_put_back_when_it_lost_its_state(
        service_factory: Callable[..., Service]) -> None:
    flaky = FlakyLamp(LampUrl.parse("virtual://desk"), LAMP_OFF)
    service = service_factory("levels: {911: {hold: until_ack}}\n", drivers={"desk": flaky})
    await service.start()
    try:
        send(service, "911", "payments down")
        await eventually(lambda: flaky.state == RED)
        flaky.state = LAMP_OFF  # the bulb was power-cycled during the alert
        await eventually(lambda: flaky.state == RED, timeout=HEALTH_CHECK)  # noticed without a new event
        flaky.unplugged = True
        unplugged_at = service.clock.now()
        await eventually(lambda: not service.lamps["desk"].online, timeout=HEALTH_CHECK)  # noticed while idle
        assert service.clock.now() - unplugged_at <= 10.1  # one health interval
        flaky.unplugged = False
        await eventually(lambda: service.lamps["desk"].online and flaky.state == RED, timeout=HEALTH_CHECK)
    finally:
        await service.stop()


async def test_a_driver_bug_marks_the_lamp_offline_instead_of_ending_its_task(
        service_factory: Callable[..., Service],
        caplog: pytest.LogCaptureFixture) -> None:
    buggy = BuggyLamp(LampUrl.parse("virtual://desk"), LAMP_OFF)
    service = service_factory("", drivers={"desk": buggy})
    await service.start()
    try:
        send(service, "911", "payments down")
        await eventually(lambda: buggy.state == RED)  # retried after the bug, and shown
        assert "unexpected error from its driver" in caplog.text
    finally:
        await service.stop()


class ClosingLamp(VirtualDriver):
    """A virtual lamp whose connection takes a moment to close, as a real device's does."""

    def __init__(self, name: str, closed: list[str]) -> None:
        super().__init__(LampUrl.parse(f"virtual://{name}"), LAMP_OFF)
        self._closed = closed

    async def close(self) -> None:
        await asyncio.sleep(0.01)  # a goodbye on the wire
        self._closed.append(self.url())


async def test_stopping_the_service_closes_every_lamps_connection(service_factory: Callable[..., Service]) -> None:
    """The closes ran as tasks that were cancelled before they started: no driver was ever closed."""
    closed: list[str] = []
    service = service_factory("lamps: {desk: virtual://desk, hall: virtual://hall}\n",
                              drivers={name: ClosingLamp(name, closed) for name in ("desk", "hall")})
    async with service.running():
        await eventually(lambda: all(lamp.memory.contacted for lamp in service.lamps.values()))
    assert sorted(closed) == ["virtual://desk", "virtual://hall"]
