"""`lamplighter hub` and `lamplighter agent` refuse a file they cannot run with, saying what is missing."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from lamplighter.cli.main import cli


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> CliRunner:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LAMPLIGHTER_CONFIG", raising=False)
    return CliRunner()


def test_a_hub_needs_a_broker_and_rooms(runner: CliRunner, tmp_path: Path) -> None:
    config = tmp_path / "hub.yaml"
    config.write_text(f"state_dir: {tmp_path}\n")
    result = runner.invoke(cli, ["hub", "-c", str(config)])
    assert result.exit_code == 2 and "needs hub: {broker: mqtt://HOST, home: NAME}" in result.output
    config.write_text(f"state_dir: {tmp_path}\nhub: {{broker: 'mqtt://127.0.0.1', home: h}}\n")
    result = runner.invoke(cli, ["hub", "-c", str(config)])
    assert result.exit_code == 2 and "a hub needs rooms:" in result.output


def test_hub_settings_are_checked_with_their_place(runner: CliRunner, tmp_path: Path) -> None:
    config = tmp_path / "hub.yaml"
    config.write_text(f"state_dir: {tmp_path}\nhub:\n  broker: 'http://broker'\n  home: 'a/b'\n  password: ''\n"
                      "rooms: {study: {levels: [9111]}}\npeople: {ann: {rooms: [attic]}}\n")
    result = runner.invoke(cli, ["check", "-c", str(config)])
    assert result.exit_code == 2
    assert f"{config}:3 hub.broker: must be mqtt://HOST[:PORT] or mqtts://HOST[:PORT]" in result.output
    assert f"{config}:4 hub.home:" in result.output
    assert f"{config}:5 hub.password: must not be empty" in result.output
    config.write_text(f"state_dir: {tmp_path}\nhub: {{broker: 'mqtt://127.0.0.1', home: h}}\n"
                      "rooms: {study: {levels: [9111]}}\npeople: {ann: {rooms: [attic]}}\n"
                      "levels: {911: {lamps: [study, cellar]}}\n")
    result = runner.invoke(cli, ["check", "-c", str(config)])
    assert result.exit_code == 2
    assert f"{config}:3 rooms.study.levels.0: no level named '9111'" in result.output
    assert f"{config}:4 people.ann.rooms.0: no room named 'attic' under rooms:" in result.output
    assert f"{config}:5 levels.911.lamps.1: no lamp named 'cellar'" in result.output
    assert "levels.911.lamps.0" not in result.output  # a room is an output of the hub


def test_an_agent_needs_a_broker_and_a_room_name_that_is_one_topic_level(runner: CliRunner, tmp_path: Path) -> None:
    config = tmp_path / "agent.yaml"
    config.write_text(f"state_dir: {tmp_path}\n")
    result = runner.invoke(cli, ["agent", "--room", "study", "-c", str(config)])
    assert result.exit_code == 2 and "needs hub:" in result.output
    config.write_text(f"state_dir: {tmp_path}\nhub: {{broker: 'mqtt://127.0.0.1', home: h}}\n")
    result = runner.invoke(cli, ["agent", "--room", "study/#", "-c", str(config)])
    assert result.exit_code == 2 and "a room name is letters, digits" in result.output
