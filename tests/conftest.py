"""Shared fixtures: a fake clock, services on a temporary state directory, real daemons.

A test module marked `pytestmark = pytest.mark.virtual_time` runs on a VirtualTimeLoop
(tests/virtual_time.py): its `clock` is the loop's, so `await asyncio.sleep(600)` moves the
service ten minutes on in no real time, timers and deadlines alike.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from lamplighter import i18n
from lamplighter.config import Config, LevelConfig, parse_config
from lamplighter.drivers.base import Driver
from lamplighter.model import SystemClock
from lamplighter.service import Service
from tests.daemon import Daemon
from tests.virtual_time import START, LoopClock, VirtualTimeLoop


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> dict[str, Callable[[], Any]]:
    """Tests marked `virtual_time` run on virtual time; every other one on a plain asyncio loop."""
    if item.get_closest_marker("virtual_time"):
        return {"virtual_time": VirtualTimeLoop}
    return {"asyncio": asyncio.new_event_loop}


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, now: float = START) -> None:
        self.current = now

    def now(self) -> float:
        return self.current

    def advance(self, seconds: float) -> None:
        self.current += seconds


@pytest.fixture(autouse=True)
def english_after_each_test() -> Iterator[None]:
    """A service or a CLI command sets the language from its configuration; the next test starts in English."""
    yield
    i18n.set_default(i18n.DEFAULT_LOCALE)


@pytest.fixture
def clock(request: pytest.FixtureRequest) -> FakeClock | LoopClock | SystemClock:
    """The service clock: the virtual loop's own under `virtual_time`, the real one under `real_time`
    (a service driving real peers), else one that moves only when told."""
    if request.node.get_closest_marker("virtual_time"):
        return LoopClock()
    return SystemClock() if request.node.get_closest_marker("real_time") else FakeClock()


def make_config(tmp_path: Path, yaml_text: str = "", solid: bool = True) -> Config:
    """A configuration on `tmp_path`; with `solid`, 911 and 912 are solid unless the text says otherwise.

    The default 911 blinks and the default 912 pulses (a look told apart without colour); the tests
    of restore, priority and pacing compare solid frames and are not about that, so they pin the old
    solid look. tests/test_effects.py checks the default rhythms themselves (solid=False)."""
    config = parse_config(f"state_dir: {tmp_path / 'state'}\n{yaml_text}", env={})
    return with_solid_defaults(config) if solid else config


def with_solid_defaults(config: Config) -> Config:
    levels = dict(config.levels)
    for name in ("911", "912"):
        given = levels[name].model_dump(exclude_unset=True) if name in levels else {}
        levels[name] = LevelConfig.model_validate({"effect": "solid", **given})
    return config.model_copy(update={"levels": levels})


@pytest.fixture
def service_factory(tmp_path: Path, clock: FakeClock) -> Callable[..., Service]:
    """Build services (not started) on one state directory, so a second one sees the first's store."""

    def build(yaml_text: str = "", drivers: Mapping[str, Driver] | None = None) -> Service:
        return Service(make_config(tmp_path, yaml_text), clock=clock, drivers=drivers)

    return build


@pytest.fixture
async def running(service_factory: Callable[..., Service]) -> AsyncIterator[Callable[..., object]]:
    """Start services built from YAML; every one is stopped at the end of the test."""
    started: list[Service] = []

    async def start(yaml_text: str = "") -> Service:
        service = service_factory(yaml_text)
        await service.start()
        started.append(service)
        return service

    yield start
    for service in started:
        await service.stop()


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Callable[..., Daemon]]:
    """Start real `lamplighter run` processes; each is stopped (SIGKILL if it hangs) at the end."""
    daemons: list[Daemon] = []

    def start(config_body: str = "", name: str = "d") -> Daemon:
        started = Daemon(tmp_path / name, config_body).start()
        daemons.append(started)
        return started

    yield start
    for started in daemons:
        if started.process and started.process.poll() is None:
            started.process.kill()
            started.process.wait()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """How many examples each property-based target tried (tests/test_fuzz_*.py)."""
    fuzzing = sys.modules.get("tests.fuzzing")  # imported only when a fuzz module ran
    if fuzzing is not None and fuzzing.TRIED:
        terminalreporter.section("fuzz examples tried")
        for target, count in sorted(fuzzing.TRIED.items()):
            terminalreporter.write_line(f"{count:7d}  {target}")
