"""`lamplighter check` and `init`, in-process: problems listed with their place; a starter that passes."""

from pathlib import Path

import pytest
from click.testing import CliRunner

from lamplighter.cli.main import cli


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> CliRunner:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LAMPLIGHTER_CONFIG", raising=False)
    return CliRunner()


def test_check_lists_every_problem_with_line_and_exits_2(runner: CliRunner, tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("lamps:\n  desk: virtual://desk\n  porch: bulb://10.0.0.9\n"
                      "levels:\n  911:\n    color: rde\n    lamps: [kitchen]\n"
                      "sources:\n  - type: pigeon\n")
    result = runner.invoke(cli, ["check", "-c", str(config)])
    assert result.exit_code == 2
    assert f"{config}:6 levels.911.color: unknown colour 'rde'" in result.output
    # Schema problems come first; URL and source problems once the schema is right.
    config.write_text("lamps:\n  desk: virtual://desk\n  porch: 'hue://s3cret@bridge:99999/lights/1'\n"
                      "sources:\n  - type: pigeon\n")
    result = runner.invoke(cli, ["check", "-c", str(config)])
    assert result.exit_code == 2
    assert f"{config}:3 lamps.porch: hue://****" in result.output and "port" in result.output
    assert f"{config}:5 sources.0.type: unknown source type 'pigeon'" in result.output
    assert "s3cret" not in result.output


def test_check_names_a_bad_duration_with_its_line_and_the_way_to_write_one(runner: CliRunner, tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("guards:\n  dedup_window: 2 minutes\n")
    result = runner.invoke(cli, ["check", "-c", str(config)])
    assert result.exit_code == 2
    assert f"{config}:2 guards.dedup_window: not a duration: '2 minutes' (use e.g. 10s, 2m, 1h)" in result.output


def test_check_summarizes_a_good_config_with_secrets_hidden(runner: CliRunner, tmp_path: Path) -> None:
    config = tmp_path / "good.yaml"
    config.write_text("server: {token: '${T}'}\nlamps: {desk: 'virtual://desk', log: 'console://log'}\n"
                      "levels: {911: {hold: until_ack}}\n")
    result = runner.invoke(cli, ["check", "-c", str(config)], env={"T": "hunter22-correct-horse"})
    assert result.exit_code == 0, result.output
    assert "good.yaml: OK" in result.output
    assert "level 911: #ff0000 solid, priority 300, hold until acknowledged, on all lamps" in result.output
    assert "hunter22-correct-horse" not in result.output


def test_init_writes_a_starter_that_check_accepts_and_never_overwrites(runner: CliRunner) -> None:
    assert runner.invoke(cli, ["init"]).exit_code == 0
    assert Path("lamplighter.yaml").exists()
    assert runner.invoke(cli, ["check"]).exit_code == 0  # found in the working directory
    again = runner.invoke(cli, ["init"])
    assert again.exit_code == 1 and "exists" in again.output


def test_client_commands_say_when_the_daemon_is_not_running(runner: CliRunner, tmp_path: Path) -> None:
    env = {"LAMPLIGHTER_URL": "http://127.0.0.1:9", "LAMPLIGHTER_TOKEN": "x-long-enough-token",
           "XDG_STATE_HOME": str(tmp_path)}
    result = runner.invoke(cli, ["send", "911", "payments down"], env=env)
    assert result.exit_code == 1 and "is `lamplighter run` running?" in result.output


def test_client_commands_without_any_token_say_where_to_get_one(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(cli, ["status"], env={"XDG_STATE_HOME": str(tmp_path), "LAMPLIGHTER_TOKEN": ""})
    assert result.exit_code == 1 and "no API token" in result.output
