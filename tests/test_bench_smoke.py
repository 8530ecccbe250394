"""bench/vs_homeassistant.py runs end to end: a real Home Assistant and a real daemon on one WLED fake.

What it asserts is that the instrument works (both systems measured on every event, the
ratio printed and written), never how fast either system is. Home Assistant's venv is
required (scripts/ensure-hass-venv): without it this fails, naming the script.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EVENTS = 3

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


def test_three_wled_events_give_both_systems_numbers_and_their_ratio(tmp_path: Path) -> None:
    results = tmp_path / "vs_homeassistant.json"
    run = subprocess.run([sys.executable, "bench/vs_homeassistant.py", "--events", str(EVENTS), "--only", "wled",
                          "--results", str(results)], cwd=ROOT, capture_output=True, text=True, timeout=220)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-3000:]
    assert "PROBLEM" not in output and "miss:" not in output, output[-3000:]
    assert f"wled  Home Assistant (ms, n={EVENTS})" in output, output[-3000:]
    assert f"wled  Lamplighter (ms, n={EVENTS})" in output, output[-3000:]
    ms, ratio = r"(\d+\.\d\d) ms", r"(\d+\.\d\d)"
    row = re.search(rf"^\| wled \| {ms} \| {ms} \| {ms} \| {ms} \| {ratio} \| {ratio} \|$", output, re.MULTILINE)
    assert row is not None, output[-3000:]
    ha_p50, _, ours_p50, _, ratio_p50, _ = (float(v) for v in row.groups())
    assert ratio_p50 == pytest.approx(ours_p50 / ha_p50, abs=0.01)
    assert re.search(r"^machine: .+ cores", output, re.MULTILINE)
    written = json.loads(results.read_text())
    wled = written["devices"]["wled"]
    assert wled["home_assistant_ms"]["count"] == EVENTS and wled["lamplighter_ms"]["count"] == EVENTS
    assert wled["ha_entity"].startswith("light.") and written["machine"]["cores"] >= 1
