"""Time you can trust (issue 11): the lamp planner as a table, deadlines that survive early
wake-ups and journal failures, and stops that cannot hang.

Most of it runs on virtual time (tests/virtual_time.py); the daemon tests run a real
`lamplighter run` with explicit tolerances.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from lamplighter.drivers.base import LampUrl
from lamplighter.drivers.virtual import VirtualDriver
from lamplighter.errors import StoreError
from lamplighter.model import LAMP_OFF, Effect, LampState, Signal, make_event
from lamplighter.rules.planner import Apply, Done, Failed, Memory, Read, Traits, Why, heard, step
from lamplighter.rules.reconcile import Desired
from lamplighter.service import Service
from lamplighter.service.core import STOP_BOUND
from lamplighter.service.fleet import CLOSE_BOUND
from lamplighter.store import Store
from tests.conftest import make_config
from tests.daemon import TOKEN, Daemon
from tests.peers.fake_wled import FakeWled
from tests.virtual_time import LoopClock, run_virtual

RED = LampState(on=True, color="#ff0000")
WARM = LampState(on=True, color="#ffd8a8", brightness=40)
T = 1000.0
TRAITS = Traits(min_interval=0.1, calm_interval=1.0, verify_after=0.5, health_interval=10.0)


def alarm(event_id: int = 1, priority: int = 300, look: LampState = RED) -> Signal:
    return Signal(event_id, "911", str(event_id), "t", priority, look, frozenset({"desk"}), 0.0, None)


IDLE = Memory(contacted=True, actual=WARM, sent=WARM, look=None, check_at=T + 10)
SHOWING = replace(IDLE, snapshot=WARM, look=RED, look_for=alarm(), actual=RED, sent=RED, showing=alarm(),
                  look_since=T - 5, send_at=T - 4.9)


# ---- the planner as a table ------------------------------------------------------------------

@pytest.mark.parametrize(("name", "memory", "desired", "report", "now", "command", "wake_at"), [
    ("first contact reads the device", Memory(), Desired(None, None), None, T, Read(Why.CONNECT), None),
    ("an idle lamp waits for its health check", IDLE, Desired(None, None), None, T, None, T + 10),
    ("an idle lamp is read at its health check", IDLE, Desired(None, None), None, T + 10, Read(Why.CHECK), None),
    ("a signal takes a snapshot first", IDLE, Desired(RED, alarm()), None, T, Read(Why.SNAPSHOT), None),
    ("then its look is sent at once", replace(IDLE, snapshot=WARM), Desired(RED, alarm()), None, T,
     Apply(RED, alarm(), new_look=True), None),
    ("a lower signal waits for the calm interval", SHOWING, Desired(LampState(True, "#0000ff"), alarm(2, 100)),
     None, T - 4.5, None, T - 4.0),
    ("a higher signal is never held back", replace(SHOWING, showing=alarm(2, 100), look_for=alarm(2, 100)),
     Desired(RED, alarm(3, 300)), None, T - 4.5, None, T + 10),
    ("the restore goes back to the snapshot", SHOWING, Desired(WARM, None), None, T, Apply(WARM, None, True), None),
    ("pacing holds a change until min_interval", replace(SHOWING, send_at=T + 0.05), Desired(WARM, None), None, T,
     None, T + 0.05),
    ("a failure goes offline and retries after 1 s", SHOWING, Desired(RED, alarm()),
     Failed(Read(Why.CHECK), "no answer"), T, None, T + 1),
    ("the second failure waits 2 s", replace(SHOWING, online=False, failures=1, retry_at=T), Desired(RED, alarm()),
     Failed(Read(Why.CHECK), "no answer"), T, None, T + 2),
    ("offline, a retry reads the device", replace(SHOWING, online=False, failures=1, retry_at=T),
     Desired(RED, alarm()), None, T, Read(Why.CHECK), None),
    ("a new look is read back after verify_after", replace(SHOWING, verify_at=T), Desired(RED, alarm()), None, T,
     Read(Why.VERIFY), None),
    ("a look not reached is sent once more", replace(SHOWING, verify_at=T), Desired(RED, alarm()),
     Done(Read(Why.VERIFY), LampState(True, "#00ff00")), T, Apply(RED, alarm(), new_look=True), None),
    ("a lamp that lost its state is put back", SHOWING, Desired(RED, alarm()),
     Done(Read(Why.CHECK), LAMP_OFF), T, Apply(RED, alarm(), new_look=True), None),
])
def test_the_planner(name: str, memory: Memory, desired: Desired, report: Any, now: float, command: Any,
                     wake_at: float | None) -> None:
    planned = step(memory, desired, report, now, TRAITS)
    assert (planned.command, None if planned.command else planned.wake_at) == (command, wake_at), name


PUSHES = replace(TRAITS, pushes_state=True)
BLUE = LampState(on=True, color="#0000ff")


@pytest.mark.parametrize(("name", "memory", "pushes", "command"), [
    ("a pushed state is the snapshot: no read first", IDLE, [WARM], Apply(RED, alarm(), new_look=True)),
    ("the latest push wins", IDLE, [WARM, BLUE], Apply(RED, alarm(), new_look=True)),
    ("a broken stream means read first", IDLE, [WARM, None], Read(Why.SNAPSHOT)),
    ("a push that may predate our last command is not believed", replace(IDLE, settled_at=T + 0.5), [BLUE],
     Read(Why.SNAPSHOT)),
    ("one that shows what we sent is", replace(IDLE, settled_at=T + 0.5), [WARM], Apply(RED, alarm(), new_look=True)),
])
def test_a_pushing_device_needs_no_read_before_the_first_alert(name: str, memory: Memory,
                                                               pushes: list[LampState | None], command: Any) -> None:
    for pushed in pushes:
        memory = heard(memory, pushed, T, PUSHES)
    planned = step(memory, Desired(RED, alarm()), None, T, PUSHES)
    assert planned.command == command, name
    if isinstance(command, Apply):
        assert planned.memory.snapshot == pushes[-1]  # and the restore goes back to what the device said


def test_after_a_command_the_pushed_state_is_unknown_until_the_device_confirms_it() -> None:
    sent = step(replace(IDLE, snapshot=WARM, known=WARM), Desired(RED, alarm()), None, T, PUSHES)
    assert sent.command == Apply(RED, alarm(), new_look=True)
    after = step(sent.memory, Desired(RED, alarm()), Done(sent.command), T, PUSHES).memory
    assert after.known is None
    assert heard(after, WARM, T + 0.1, PUSHES).known is None  # the old state, still in flight: not believed
    assert heard(after, RED, T + 0.1, PUSHES).known == RED
    assert heard(after, BLUE, T + 1, PUSHES).known == BLUE  # someone changed it later, in the app


def test_an_emulated_blink_is_frames_half_a_second_apart_and_ends_on_the_restore() -> None:
    blink = LampState(on=True, color="#00ff00", effect=Effect.BLINK)
    door = alarm(look=blink)
    memory, now, sent = replace(IDLE, snapshot=WARM), T, []
    traits = replace(TRAITS, verify_after=None)
    while now < T + 2.01:
        planned = step(memory, Desired(blink, door), None, now, traits)
        if isinstance(planned.command, Apply):
            sent.append((round(now - T, 2), planned.command.frame.on))
            planned = step(planned.memory, Desired(blink, door), Done(planned.command), now, traits)
        memory = planned.memory
        assert planned.command is None and planned.wake_at is not None and planned.wake_at > now
        now = planned.wake_at
    assert sent == [(0.0, True), (0.5, False), (1.0, True), (1.5, False), (2.0, True)]


# ---- deadlines --------------------------------------------------------------------------------

SHELF = "lamps: {desk: 'virtual://desk?on=true&color=warmwhite&brightness=40'}\n"


def test_a_signal_never_stays_active_after_its_hold_even_when_wake_ups_come_early(tmp_path: Path) -> None:
    """Issue 11, item 1, 100 times: 912 and 912 from one sender, 6 s later a 911 from another; 13 s later
    nothing is active, in memory, in the journal or in the metrics, with every wake-up up to 5 ms early."""
    rng = random.Random(11)
    for run in range(100):
        async def scenario(state: Path = tmp_path / str(run), run: int = run) -> None:
            service = Service(make_config(state, SHELF), clock=LoopClock())
            async with service.running():
                for title in ("disk filling", "backup late"):
                    service.submit(make_event("912", title, received_at=service.clock.now(), sender="ci"))
                    await asyncio.sleep(rng.uniform(0, 0.01))
                await asyncio.sleep(6)
                service.submit(make_event("911", "payments down", received_at=service.clock.now(), sender="bob"))
                await asyncio.sleep(13)
                assert service.signals == {}, f"run {run}"
                assert service.store.active_signals() == [], f"run {run}"
                assert service.metrics.active_signals._value.get() == 0
                assert service.lamps["desk"].actual == WARM

        run_virtual(scenario, early=rng.uniform(0, 0.005))


class DiskFull(Store):
    failing = False

    def _transaction(self, statements: Any) -> None:
        if self.failing:
            raise StoreError(f"cannot write to the store at {self.path}: database or disk is full")
        return super()._transaction(statements)


@pytest.mark.virtual_time
async def test_a_journal_that_fails_at_a_deadline_does_not_stop_expiry(tmp_path: Path) -> None:
    """Issue 11, item 3: the lamp follows the truth at once; the end is written when the disk has room."""
    service = Service(make_config(tmp_path, SHELF), clock=LoopClock(), store=DiskFull)
    async with service.running():
        receipt = service.submit(make_event("912", "disk filling", received_at=service.clock.now()))
        store = service.store
        assert isinstance(store, DiskFull)
        store.failing = True
        await asyncio.sleep(10.5)
        assert service.signals == {} and service.lamps["desk"].actual == WARM  # not 49 s late
        assert [s.event_id for s in store.active_signals()] == [receipt.id]  # owed to the journal
        await asyncio.sleep(30)
        store.failing = False
        await asyncio.sleep(60)  # the next retry, with backoff
        assert store.active_signals() == []
        assert store.signal_end(receipt.id) is not None


# ---- stops that cannot hang ----------------------------------------------------------------------

class SwallowingLamp(VirtualDriver):
    """A device library that swallows a cancellation meeting its I/O, as lifx-async's wait_for can."""

    health_interval = 0.05
    verify_after = 0.01
    min_interval = 0.01

    def __init__(self, rng: random.Random) -> None:
        super().__init__(LampUrl.parse("virtual://desk"), LAMP_OFF)
        self.rng = rng

    async def apply(self, state: LampState, showing: Signal | None = None) -> None:
        await self._io()
        await super().apply(state, showing)

    async def read_state(self) -> LampState:
        await self._io()
        return await super().read_state()

    async def _io(self) -> None:
        with contextlib.suppress(asyncio.CancelledError):  # the bug: the cancel is lost
            await asyncio.sleep(self.rng.uniform(0, 0.05))


def test_stop_returns_within_its_bound_while_a_driver_swallows_cancels(tmp_path: Path) -> None:
    """A hundred stops at random moments of a lamp busy with a library that swallows cancellations."""
    rng = random.Random(2)
    for run in range(100):
        async def scenario(state: Path = tmp_path / str(run)) -> float:
            service = Service(make_config(state, "levels: {911: {hold: until_ack, effect: blink}}\n"),
                              clock=LoopClock(), drivers={"desk": SwallowingLamp(rng)})
            await service.start()
            service.submit(make_event("911", "payments down", received_at=service.clock.now()))
            await asyncio.sleep(rng.uniform(0, 2))
            began = asyncio.get_running_loop().time()
            await service.stop()
            return asyncio.get_running_loop().time() - began

        took = run_virtual(scenario)
        assert took <= STOP_BOUND + CLOSE_BOUND, f"run {run}: stop took {took:.3f} s"


SWALLOWING_PLUGIN = '''
"""A lamplighter driver plug-in whose I/O swallows cancellations (tests/test_time.py)."""
import asyncio, random
from lamplighter.drivers.virtual import VirtualDriver

class SwallowingDriver(VirtualDriver):
    scheme = "swallow"
    health_interval = 0.05
    verify_after = 0.01
    min_interval = 0.01

    async def apply(self, state, showing=None):
        await _io()
        await super().apply(state, showing)

    async def read_state(self):
        await _io()
        return await super().read_state()

async def _io():
    try:
        await asyncio.sleep(random.uniform(0, 0.05))
    except asyncio.CancelledError:
        pass
'''


TRIALS = 10  # each starts a daemon (about a second); the in-process test above does a hundred


def plugin_path(tmp_path: Path) -> Path:
    """A directory with a real installed plug-in: a module and its dist-info entry point."""
    site = tmp_path / "site"
    (site / "swallow_driver-1.0.dist-info").mkdir(parents=True)
    (site / "swallow_driver.py").write_text(SWALLOWING_PLUGIN)
    (site / "swallow_driver-1.0.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: swallow-driver\n"
                                                                    "Version: 1.0\n")
    (site / "swallow_driver-1.0.dist-info" / "entry_points.txt").write_text(
        "[lamplighter.drivers]\nswallow = swallow_driver:SwallowingDriver\n")
    return site


@pytest.mark.slow
def test_sigterm_ends_the_daemon_within_2_s_while_a_driver_swallows_cancels(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = plugin_path(tmp_path)
    monkeypatch.setenv("PYTHONPATH", f"{site}:{':'.join(sys.path)}")
    rng = random.Random(3)
    for trial in range(TRIALS):
        daemon = Daemon(tmp_path / f"d{trial}", "lamps: {desk: 'swallow://desk'}\n"
                        "levels: {911: {hold: until_ack, effect: blink}}\n").start()
        with daemon.client() as client:
            assert client.post("/api/events", json={"level": "911", "title": "payments down"}).status_code == 202
        time.sleep(rng.uniform(0.05, 0.5))
        began = time.monotonic()
        code = daemon.stop(signal.SIGTERM, timeout=10)
        took = time.monotonic() - began
        assert took < 2.0, f"trial {trial}: {took:.2f} s\n{daemon.log_tail()}"
        assert code == 0, f"trial {trial}: exit {code}\n{daemon.log_tail()}"


# ---- against a real daemon ---------------------------------------------------------------------

@pytest.mark.slow
def test_the_stale_active_scenario_against_a_real_daemon(tmp_path: Path) -> None:
    """Issue 11, item 1, once for real (holds shortened to 2 s; the timing is the same)."""
    daemon = Daemon(tmp_path / "d", "levels: {'911': {hold: 2s}, '912': {hold: 2s}}\n").start()
    try:
        with daemon.client() as client:
            for title in ("disk filling", "backup late"):
                client.post("/api/events", json={"level": "912", "title": title, "sender": "ci"})
            time.sleep(1.2)
            client.post("/api/events", json={"level": "911", "title": "payments down", "sender": "bob"})
            time.sleep(2.6)
            events = client.get("/api/timeline").json()["events"]
            assert [e["active"] for e in events] == [False, False, False]
            assert "lamplighter_active_signals 0.0" in client.get("/metrics").text
    finally:
        daemon.stop()


@pytest.mark.slow
async def test_an_idle_lamp_that_stops_answering_is_offline_within_15_s(tmp_path: Path) -> None:
    """Issue 11, item 4, against a real daemon and a WLED strip that is unplugged while idle."""
    async with FakeWled() as strip:
        daemon = Daemon(tmp_path / "d", f"lamps: {{strip: 'wled://{strip.base_url.removeprefix('http://')}'}}\n")
        await asyncio.to_thread(daemon.start)
        try:
            async with httpx.AsyncClient(base_url=daemon.url, headers={"Authorization": f"Bearer {TOKEN}"}) as client:
                strip.unplug()
                unplugged = time.monotonic()
                while (await client.get("/api/lamps")).json()[0]["online"]:
                    assert time.monotonic() - unplugged < 15, "still online 15 s after the strip went away"
                    await asyncio.sleep(0.2)
                strip.plug()
                while not (await client.get("/api/lamps")).json()[0]["online"]:
                    assert time.monotonic() - unplugged < 40, "not back online"
                    await asyncio.sleep(0.2)
        finally:
            await asyncio.to_thread(daemon.stop)



@pytest.mark.virtual_time
async def test_a_snapshot_the_journal_refused_is_written_once_it_can_so_a_restart_restores_exactly(
        tmp_path: Path) -> None:
    """Found by the simulation (seed 0, 1,000 hours): the disk was full when a signal took the lamp, the
    snapshot was never written, and after a restart the lamp 'restored' to the alert's colour."""
    config = make_config(tmp_path, SHELF + "levels: {911: {hold: until_ack}}\n")
    desk = VirtualDriver(LampUrl.parse("virtual://desk"), WARM)  # the same bulb before and after the restart
    first = Service(config, clock=LoopClock(), drivers={"desk": desk}, store=DiskFull)
    async with first.running():
        store = first.store
        assert isinstance(store, DiskFull)
        await asyncio.sleep(1)
        store.failing = True  # the event itself is recorded (one transaction of its own); the snapshot is not
        alarm = first.submit(make_event("911", "payments down", received_at=first.clock.now()))
        await asyncio.sleep(1)
        assert first.lamps["desk"].actual == RED
        store.failing = False
        await asyncio.sleep(6)  # the next retry
    second = Service(config, clock=LoopClock(), drivers={"desk": desk})
    async with second.running():
        await asyncio.sleep(1)
        assert second.lamps["desk"].snapshot == WARM
        second.acknowledge(alarm.id, by="alice")
        await asyncio.sleep(2)
        assert desk.state == WARM
