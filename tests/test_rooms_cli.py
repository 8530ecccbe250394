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


def test_presence_settings_are_checked_with_their_place(runner: CliRunner, tmp_path: Path) -> None:
    config = tmp_path / "hub.yaml"
    config.write_text(f"state_dir: {tmp_path}\nhub: {{broker: 'mqtt://127.0.0.1', home: h}}\n"
                      "rooms: {study: {}, kitchen: {}}\n"
                      "people:\n"
                      "  ann:\n"
                      "    rooms: [study]\n"
                      "    presence:\n"
                      "      hass: 'hass://${HASS_TOKEN}@ha.local:8123'\n"                    # 8
                      "      entity: sensor.ann_phone_area\n"
                      "  bob:\n"
                      "    rooms: [kitchen]\n"
                      "    presence: {topic: phones/bob, hass: 'hass://s3cret-token@ha.local', entity: person.bob}\n"
                      "  cy:\n"
                      "    rooms: [kitchen]\n"
                      "    presence:\n"
                      "      hass: 'hass://@ha.local:8123'\n"                                 # 16
                      "      entity: Person Cy\n"                                             # 17
                      "  dee:\n"
                      "    rooms: [kitchen]\n"
                      "    presence: {hass: 'hass://s3cret-token@ha.local:8123/light.x', entity: person.dee}\n"
                      "  eve:\n"
                      "    rooms: [kitchen]\n"
                      "    presence: {hass: 'hass://s3cret-token@ha.local:8123'}\n")         # 23
    result = runner.invoke(cli, ["check", "-c", str(config)], env={"HASS_TOKEN": ""})
    assert result.exit_code == 2
    assert f"{config}:8 people.ann.presence.hass: environment variable HASS_TOKEN is empty" in result.output
    assert f"{config}:12 people.bob.presence: give either topic: (MQTT) or hass: and entity: (Home Assistant), " \
           "not both" in result.output
    assert f"{config}:16 people.cy.presence.hass: the access token before the @ is empty" in result.output
    assert f"{config}:17 people.cy.presence.entity: must be an entity id such as person.ann" in result.output
    assert f"{config}:20 people.dee.presence.hass: must be hass://TOKEN@HOST[:PORT]" in result.output
    assert f"{config}:23 people.eve.presence: Home Assistant presence needs both hass:" in result.output
    assert "s3cret" not in result.output  # the token is never shown


def test_a_presence_table_names_only_the_persons_rooms(runner: CliRunner, tmp_path: Path) -> None:
    config = tmp_path / "hub.yaml"
    config.write_text(f"state_dir: {tmp_path}\nhub: {{broker: 'mqtt://127.0.0.1', home: h}}\n"
                      "rooms: {study: {}, kitchen: {}}\n"
                      "people:\n"
                      "  ann:\n"
                      "    rooms: [study]\n"
                      "    presence:\n"
                      "      hass: 'hass://${HASS_TOKEN}@ha.local:8123'\n"
                      "      entity: sensor.ann_phone_area\n"
                      "      rooms: {Study: study, Kitchen: kitchen, Attic: attic}\n")     # 10
    result = runner.invoke(cli, ["check", "-c", str(config)], env={"HASS_TOKEN": "a-long-lived-token"})
    assert result.exit_code == 2
    assert f"{config}:10 people.ann.presence.rooms.Kitchen: no room named 'kitchen' among ann's rooms (study)" \
        in result.output
    assert f"{config}:10 people.ann.presence.rooms.Attic: no room named 'attic'" in result.output
    assert "rooms.Study" not in result.output
    config.write_text(config.read_text().replace(", Kitchen: kitchen, Attic: attic", ""))
    result = runner.invoke(cli, ["check", "-c", str(config)], env={"HASS_TOKEN": "a-long-lived-token"})
    assert result.exit_code == 0, result.output
