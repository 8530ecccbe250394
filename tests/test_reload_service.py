"""Service.reload with virtual lamps on virtual time: where active signals go, what the journal keeps,
and what a failed reload leaves (the daemon-level tests are in test_reload_daemon.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from lamplighter.config import load_config
from lamplighter.drivers.virtual import VirtualDriver
from lamplighter.errors import ConfigError, StoreError
from lamplighter.model import LampState, Outcome
from lamplighter.service import Service, SignalAction
from lamplighter.service.core import NO_FILE
from lamplighter.service.incidents import LEVEL_REMOVED
from tests.test_service import RED, WARM, eventually, send, state
from tests.virtual_time import LoopClock

pytestmark = pytest.mark.virtual_time

BLUE = LampState(on=True, color="#0000ff")
SHELF = "'virtual://desk?on=true&color=warmwhite&brightness=40'"
TWO = f"lamps: {{desk: {SHELF}, porch: virtual://porch}}\n"

Start = Callable[[str], Awaitable[Service]]


class Files:
    """The configuration file of the services a test starts (one state directory)."""

    def __init__(self, tmp_path: Path) -> None:
        self.path = tmp_path / "lamplighter.yaml"
        self.state = tmp_path / "state"

    def write(self, text: str) -> None:
        self.path.write_text(f"state_dir: {self.state}\n{text}")


@pytest.fixture
def files(tmp_path: Path) -> Files:
    return Files(tmp_path)


@pytest.fixture
async def start(files: Files, clock: LoopClock) -> AsyncIterator[Start]:
    started: list[Service] = []

    async def run(text: str) -> Service:
        files.write(text)
        service = Service(load_config(files.path).config, clock=clock, config_path=files.path)
        await service.start()
        started.append(service)
        return service

    yield run
    for service in started:
        await service.stop()


async def test_a_level_given_a_new_colour_recolours_its_active_signal_and_the_snapshot_stays(
        start: Start, files: Files) -> None:
    service = await start(f"lamps: {{desk: {SHELF}}}\nlevels: {{912: {{hold: 1m, effect: solid}}}}\n")
    send(service, "912", "disk filling")
    await eventually(lambda: state(service).color == "#ffd000")
    files.write(f"lamps: {{desk: {SHELF}}}\nlevels: {{912: {{hold: 1m, color: blue, effect: solid}}}}\n")
    changes = await service.reload()
    assert changes.levels_changed == ("912",)
    await eventually(lambda: state(service) == BLUE)
    assert service.lamps["desk"].snapshot == WARM
    await asyncio.sleep(60)
    await eventually(lambda: state(service) == WARM)


async def test_a_signal_moves_to_the_lamps_its_level_now_names_and_stays_there_after_a_restart(
        start: Start, files: Files) -> None:
    service = await start(f"{TWO}levels: {{911: {{hold: until_ack, lamps: [desk], effect: solid}}}}\n")
    alarm = send(service, "911", "payments down").id
    await eventually(lambda: state(service) == RED)
    files.write(f"{TWO}levels: {{911: {{hold: until_ack, lamps: [porch], effect: solid}}}}\n")
    await service.reload()
    await eventually(lambda: state(service, "porch") == RED and state(service) == WARM)
    await service.stop()

    again = await start(f"{TWO}levels: {{911: {{hold: until_ack, lamps: [porch], effect: solid}}}}\n")
    assert again.signals[alarm].lamps == {"porch"}  # the journal has the move
    await eventually(lambda: state(again, "porch") == RED)


async def test_a_signal_whose_level_is_removed_ends_and_the_journal_says_why(start: Start, files: Files) -> None:
    service = await start(f"lamps: {{desk: {SHELF}}}\nlevels: {{deploy: {{color: blue, priority: 50, hold: 1h}}}}\n")
    deploy = send(service, "deploy", "rolling out").id
    await eventually(lambda: state(service) == BLUE)
    files.write(f"lamps: {{desk: {SHELF}}}\n")
    await service.reload()
    assert deploy not in service.signals
    assert service.signal_end(deploy) == (service.clock.now(), LEVEL_REMOVED)
    await eventually(lambda: state(service) == WARM)


async def test_dedup_memory_and_the_global_snooze_carry_over(start: Start, files: Files) -> None:
    service = await start(f"lamps: {{desk: {SHELF}}}\n")
    assert send(service, "912", "disk filling").outcome is Outcome.SHOWN
    service.snooze_all(600, by="alice")
    files.write(TWO)
    assert (await service.reload()).lamps_added == ("porch",)
    assert send(service, "912", "disk filling").outcome is Outcome.DEDUPLICATED
    snooze = service.snooze()
    assert snooze is not None and snooze.by == "alice"


async def test_a_lamp_given_a_new_url_is_put_back_then_replaced_and_the_new_one_shows_the_signal(
        start: Start, files: Files) -> None:
    service = await start(f"lamps: {{desk: {SHELF}}}\nlevels: {{911: {{hold: until_ack, effect: solid}}}}\n")
    alarm = send(service, "911", "payments down").id
    await eventually(lambda: state(service) == RED)
    old = service.lamps["desk"].driver
    files.write("lamps: {desk: 'virtual://desk?on=true&color=blue'}\nlevels: {911: {hold: until_ack, effect: solid}}\n")
    assert (await service.reload()).lamps_replaced == ("desk",)
    assert isinstance(old, VirtualDriver) and old.state == WARM  # put back before it was let go
    assert service.lamps["desk"].driver is not old
    await eventually(lambda: state(service) == RED)
    assert service.acknowledge(alarm, by="alice") is SignalAction.DONE
    await eventually(lambda: state(service) == BLUE)


async def test_a_journal_that_refuses_the_move_leaves_everything_as_it_was(
        start: Start, files: Files, monkeypatch: pytest.MonkeyPatch) -> None:
    service = await start(f"{TWO}levels: {{911: {{hold: until_ack, lamps: [desk], effect: solid}}}}\n")
    alarm = send(service, "911", "payments down").id
    before = (service.config, dict(service.signals), dict(service.lamps))

    def full_disk(lamps: object) -> None:
        raise StoreError("cannot write to the store: database or disk is full")

    monkeypatch.setattr(service.store, "set_signal_lamps", full_disk)
    files.write("lamps: {porch: virtual://porch}\nlevels: {911: {hold: until_ack, lamps: [porch], effect: solid}}\n")
    with pytest.raises(StoreError):
        await service.reload()
    assert (service.config, dict(service.signals), dict(service.lamps)) == before
    assert service.signals[alarm].lamps == {"desk"}


async def test_a_daemon_started_without_a_file_says_there_is_nothing_to_reload(clock: LoopClock,
                                                                             tmp_path: Path) -> None:
    service = Service(load_config(None, env={}).config.model_copy(update={"state_dir": tmp_path}), clock=clock)
    async with service.running():
        with pytest.raises(ConfigError) as refused:
            await service.reload()
    assert refused.value.problems == [("", NO_FILE)]


async def test_a_removed_source_is_no_longer_blind(start: Start, files: Files) -> None:
    hook = "sources:\n  - {type: webhook, name: cron, token: t0123456789abcdef, level: '912', title: '{msg}', " \
           "expect_every: 1m}\n"
    service = await start(f"lamps: {{desk: {SHELF}}}\n{hook}")
    await asyncio.sleep(61)
    [blind] = service.signals.values()
    assert (blind.level, blind.key) == ("blind", "blind:cron")
    files.write(f"lamps: {{desk: {SHELF}}}\n")
    assert (await service.reload()).sources_removed == ("cron",)
    assert service.signals == {}
    assert service.recent_events(1)[0].title == "cron is no longer configured"
    await eventually(lambda: state(service) == WARM)
