"""The dead-man's switch as a table under a fake clock, and three silent sources on virtual time."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from lamplighter.rules.watchdog import Watch, blind_deadline, blind_reason
from lamplighter.service import Service
from tests.conftest import make_config
from tests.virtual_time import LoopClock

QUIET_WATCHDOG = Watch("alertmanager", expect_every=600, last_heard=1000, disconnected_since=None)
NO_EXPECTATION = Watch("api", expect_every=None, last_heard=0, disconnected_since=None)
DROPPED = Watch("frigate", expect_every=None, last_heard=0, disconnected_since=5000)


@pytest.mark.parametrize(("watch", "now", "reason"), [
    (QUIET_WATCHDOG, 1599, None),
    (QUIET_WATCHDOG, 1600, "alertmanager has been silent for 10m (expected every 10m)"),
    (QUIET_WATCHDOG, 8200, "alertmanager has been silent for 2h (expected every 10m)"),
    (NO_EXPECTATION, 10**9, None),                      # no expect_every: silence is allowed
    (DROPPED, 5059, None),                              # a reconnect within a minute is a blip
    (DROPPED, 5060, "frigate has been disconnected for 1m"),
])
def test_blind_reason(watch: Watch, now: float, reason: str | None) -> None:
    assert blind_reason(watch, now) == reason


def test_deadlines() -> None:
    assert blind_deadline(QUIET_WATCHDOG) == 1600
    assert blind_deadline(NO_EXPECTATION) is None
    assert blind_deadline(DROPPED) == 5060
    both = Watch("x", expect_every=30, last_heard=5000, disconnected_since=5000)
    assert blind_deadline(both) == 5030


@pytest.mark.virtual_time
async def test_three_sources_silent_at_once_are_all_blind_at_once(tmp_path: Path) -> None:
    """The default per-sender rate limit (2 at once) must not hold back the third (reported as a suspicion
    during issue 16; this shows it does not happen)."""
    sources = "".join(f"  - {{type: alertmanager, name: am{i}, token: am{i}-token-0123456789, expect_every: 10m}}\n"
                      for i in range(3))
    service = Service(make_config(tmp_path, f"lamps: {{desk: virtual://desk}}\nsources:\n{sources}"), clock=LoopClock())
    async with service.running():
        await asyncio.sleep(11 * 60)
        blind = sorted(s.key for s in service.signals.values() if s.level == "blind")
        assert blind == ["blind:am0", "blind:am1", "blind:am2"]
