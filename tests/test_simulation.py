"""The whole service under a deterministic simulation (tests/simulation.py): simulated weeks of
events, device faults, journal failures and restarts, with the invariants checked after every step.

`make test` runs SIM_SEEDS seeds for SIM_HOURS simulated hours each; LAMPLIGHTER_SIM_HOURS and
LAMPLIGHTER_SIM_SEEDS run a longer soak. A failure names its seed; LAMPLIGHTER_SIM_SEED=N replays it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.simulation import Simulation
from tests.virtual_time import run_virtual

SIM_HOURS = float(os.environ.get("LAMPLIGHTER_SIM_HOURS", "250"))
SEEDS = [int(seed) for seed in os.environ.get("LAMPLIGHTER_SIM_SEED", "").split(",") if seed] or \
    list(range(int(os.environ.get("LAMPLIGHTER_SIM_SEEDS", "4"))))


@pytest.mark.parametrize("seed", SEEDS)
def test_the_invariants_hold_for_simulated_weeks(seed: int, tmp_path: Path) -> None:
    simulation = Simulation(seed, tmp_path)
    figures = run_virtual(lambda: simulation.run(SIM_HOURS))
    print(f"seed {seed}: {figures}")
    assert figures.hours >= SIM_HOURS and figures.checks == figures.steps
    assert figures.accepted > 0 and figures.restarts > 0  # the stream really did what it should
