"""`lamplighter check` and `init`, in-process: problems listed with their place; a starter that passes."""

import json
import os
import pty
import re
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from lamplighter.cli.main import cli
from lamplighter.config import parse_config
from tests.daemon import TOKEN, Daemon, free_port


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
    # One pass: the schema's problem, the reference to a lamp that does not exist, the URL and the source.
    assert f"{config}:6 levels.911.color: unknown colour 'rde'" in result.output
    assert f"{config}:7 levels.911.lamps.0: no lamp named 'kitchen' under lamps:" in result.output
    assert f"{config}:3 lamps.porch: " in result.output
    assert f"{config}:9 sources.0.type: unknown source type 'pigeon'" in result.output
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
    assert "level 911: #ff0000 blink, priority 300, hold until acknowledged, on all lamps" in result.output
    assert "hunter22-correct-horse" not in result.output


def test_init_writes_a_starter_that_check_accepts_and_never_overwrites(runner: CliRunner) -> None:
    assert runner.invoke(cli, ["init"]).exit_code == 0
    assert Path("lamplighter.yaml").exists()
    assert runner.invoke(cli, ["check"]).exit_code == 0  # found in the working directory
    again = runner.invoke(cli, ["init"])
    assert again.exit_code == 1 and "exists" in again.output


@pytest.mark.parametrize("palette", ["", "palette: colorblind\n"])
def test_the_starter_shows_the_default_levels_and_keeps_the_palette(runner: CliRunner, palette: str) -> None:
    assert runner.invoke(cli, ["init"]).exit_code == 0
    starter = parse_config(palette + Path("lamplighter.yaml").read_text(), env={}).resolved_levels()
    defaults = parse_config(palette, env={}).resolved_levels()
    for name in ("911", "912", "door"):
        assert (starter[name].color, starter[name].effect) == (defaults[name].color, defaults[name].effect)


def test_client_commands_say_when_the_daemon_is_not_running(runner: CliRunner, tmp_path: Path) -> None:
    env = {"LAMPLIGHTER_URL": "http://127.0.0.1:9", "LAMPLIGHTER_TOKEN": "x-long-enough-token",
           "XDG_STATE_HOME": str(tmp_path)}
    result = runner.invoke(cli, ["send", "911", "payments down"], env=env)
    assert result.exit_code == 1 and "is `lamplighter run` running?" in result.output


def test_client_commands_without_any_token_say_where_to_get_one(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(cli, ["status"], env={"XDG_STATE_HOME": str(tmp_path), "LAMPLIGHTER_TOKEN": ""})
    assert result.exit_code == 1 and "no API token: pass --token, set LAMPLIGHTER_TOKEN" in result.output


def test_check_names_a_port_out_of_range(runner: CliRunner, tmp_path: Path) -> None:
    config = tmp_path / "port.yaml"
    config.write_text("server:\n  listen: 127.0.0.1:99999\n")
    result = runner.invoke(cli, ["check", "-c", str(config)])
    assert result.exit_code == 2
    assert f"{config}:2 server.listen: port 99999 is out of range: a port is 1-65535" in result.output


def test_check_reports_an_unset_secret_together_with_a_schema_problem(runner: CliRunner, tmp_path: Path) -> None:
    config = tmp_path / "both.yaml"
    config.write_text("server: {token: '${NOT_SET_ANYWHERE}'}\nguards: {dedup_window: soon}\n")
    result = runner.invoke(cli, ["check", "-c", str(config)], env={"NOT_SET_ANYWHERE": None})
    assert result.exit_code == 2
    assert "server.token: environment variable NOT_SET_ANYWHERE is not set" in result.output
    assert "guards.dedup_window: not a duration: 'soon'" in result.output
    assert "characters" not in result.output  # the empty secret is not reported a second time as too short


def test_every_command_summary_in_help_is_whole(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["--help"])
    summaries = result.output.split("Commands:")[1].strip().splitlines()
    assert len(summaries) >= 10
    for line in summaries:
        assert not line.rstrip().endswith(("...", "e.g.")), line


def test_snooze_with_a_bare_number_asks_for_a_unit(runner: CliRunner) -> None:
    env = {"LAMPLIGHTER_URL": "http://127.0.0.1:9", "LAMPLIGHTER_TOKEN": TOKEN}
    result = runner.invoke(cli, ["snooze", "2"], env=env)
    assert result.exit_code == 2
    assert "'2' has no unit: say 2m for minutes, 2h for hours or 2s for seconds" in result.output


def test_status_with_zero_events_is_a_usage_error_naming_the_range(runner: CliRunner) -> None:
    env = {"LAMPLIGHTER_URL": "http://127.0.0.1:9", "LAMPLIGHTER_TOKEN": TOKEN}
    result = runner.invoke(cli, ["status", "-n", "0"], env=env)
    assert result.exit_code == 2
    assert "Invalid value for '-n' / '--events': 0 is not in the range 1<=x<=5000" in result.output
    assert "422" not in result.output


def lamplighter(*args: str, env: dict[str, str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lamplighter", *args], env=env, capture_output=True, text=True,
                          timeout=30, cwd=cwd)


def bare_env(tmp_path: Path) -> dict[str, str]:
    """The environment of a shell that has none of the daemon's settings."""
    return {key: value for key, value in os.environ.items() if not key.startswith("LAMPLIGHTER_")} | {
        "XDG_STATE_HOME": str(tmp_path / "client-state"), "NO_COLOR": ""}


SOURCE_WITH_SECRET = ("sources:\n  - type: alertmanager\n    token: '${ALERTMANAGER_TOKEN}'\n"
                      "    level: 911\n")


@pytest.mark.slow
def test_client_commands_need_only_the_address_and_the_token(daemon: Callable[..., Daemon], tmp_path: Path) -> None:
    running = daemon()
    # The daemon's file names a source secret the client's shell does not have; the client reads only server:.
    config = tmp_path / "daemon.yaml"
    config.write_text(f"server: {{listen: 127.0.0.1:{running.port}, token: '${{LL_TOKEN}}'}}\n{SOURCE_WITH_SECRET}")
    env = bare_env(tmp_path) | {"LL_TOKEN": TOKEN}
    sent = lamplighter("send", "-c", str(config), "912", "disk filling", "--json", env=env)
    assert sent.returncode == 0, sent.stderr
    answer = json.loads(sent.stdout)
    assert answer["outcome"] == "shown" and answer["id"] >= 1
    # --url and --token alone: no file at all.
    status = lamplighter("status", "--url", running.url, "--token", TOKEN, "--json", env=bare_env(tmp_path))
    assert status.returncode == 0, status.stderr
    seen = json.loads(status.stdout)
    assert [event["title"] for event in seen["events"]] == ["disk filling"]
    assert seen["lamps"][0]["showing"]["level"] == "912"


@pytest.mark.slow
def test_every_client_command_answers_json(daemon: Callable[..., Daemon], tmp_path: Path) -> None:
    running = daemon()
    env = bare_env(tmp_path) | {"LAMPLIGHTER_URL": running.url, "LAMPLIGHTER_TOKEN": TOKEN}
    sent = json.loads(lamplighter("send", "911", "payments down", "--json", env=env).stdout)
    lamps = json.loads(lamplighter("lamps", "--json", env=env).stdout)
    assert lamps[0]["name"] == "desk" and lamps[0]["showing"]["event_id"] == sent["id"]
    acked = json.loads(lamplighter("ack", str(sent["id"]), "--by", "dana", "--json", env=env).stdout)
    assert acked["id"] == sent["id"] and acked["by"] == "dana"
    snoozed = json.loads(lamplighter("snooze", "30m", "--json", env=env).stdout)
    assert snoozed["by"] and snoozed["snoozed_until"] > 0
    assert json.loads(lamplighter("snooze", "off", "--json", env=env).stdout)["snoozed_until"] is None
    tested = json.loads(lamplighter("test", "desk", "912", "--for", "0.3s", "--json", env=env).stdout)
    assert tested["shown"]["showing"]["level"] == "912" and tested["shown"]["state"]["on"]
    assert tested["back"]["showing"] is None


def on_a_terminal(args: list[str], env: dict[str, str]) -> str:
    """Run the CLI with its output on a pseudo-terminal, as in a shell; what it printed."""
    leader, follower = pty.openpty()
    process = subprocess.Popen([sys.executable, "-m", "lamplighter", *args], env=env, stdout=follower,
                               stderr=follower, stdin=subprocess.DEVNULL)
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the follower side closed: the process ended
            break
        if not chunk:
            break
        chunks.append(chunk)
    process.wait(timeout=30)
    os.close(leader)
    return b"".join(chunks).decode()


@pytest.mark.slow
def test_colour_on_a_terminal_only_and_never_with_no_color(daemon: Callable[..., Daemon], tmp_path: Path) -> None:
    running = daemon()
    env = bare_env(tmp_path) | {"LAMPLIGHTER_URL": running.url, "LAMPLIGHTER_TOKEN": TOKEN}
    on_terminal = on_a_terminal(["send", "911", "payments down"], env)
    assert "\x1b[" in on_terminal and "shown" in on_terminal
    assert "\x1b[" not in on_a_terminal(["status"], env | {"NO_COLOR": "1"})
    piped = lamplighter("status", env=env)
    assert "shown" in piped.stdout and "\x1b[" not in piped.stdout


@pytest.mark.slow
def test_a_refused_token_says_where_it_came_from(daemon: Callable[..., Daemon], tmp_path: Path) -> None:
    running = daemon()
    env = bare_env(tmp_path) | {"LAMPLIGHTER_URL": running.url}
    flag = lamplighter("status", "--token", "wrong-token-0123456789", env=env)
    assert flag.returncode == 1 and "refused the token from --token" in flag.stderr
    from_env = lamplighter("status", env=env | {"LAMPLIGHTER_TOKEN": "wrong-token-0123456789"})
    assert "refused the token from the environment variable LAMPLIGHTER_TOKEN" in from_env.stderr
    token_file = tmp_path / "client-state" / "lamplighter" / "token"
    token_file.parent.mkdir(parents=True)
    token_file.write_text("an-old-token-from-another-daemon\n")
    from_file = lamplighter("status", env=env)
    assert f"refused the token from the token file {token_file}" in from_file.stderr


def test_run_on_a_taken_port_says_so_in_one_line_before_any_token(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = tmp_path / "taken.yaml"
        config.write_text(f"server: {{listen: 127.0.0.1:{port}}}\nstate_dir: {tmp_path / 'state'}\n")
        result = lamplighter("run", "-c", str(config), env=bare_env(tmp_path))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"error: server.listen: cannot listen on 127.0.0.1:{port}: Address already in use "
        "(another program listens there: stop it, or choose another port)"]
    assert "token" not in result.stdout and not (tmp_path / "state" / "token").exists()


@pytest.mark.slow
def test_the_try_it_hint_after_run_with_a_file_names_the_file(tmp_path: Path) -> None:
    port = free_port()
    config = tmp_path / "my lamps.yaml"
    config.write_text(f"server: {{listen: 127.0.0.1:{port}}}\nstate_dir: {tmp_path / 'state'}\n")
    process = subprocess.Popen([sys.executable, "-m", "lamplighter", "run", "-c", str(config)],
                               env=bare_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert process.stdout is not None
        hint = next(line for line in process.stdout if line.startswith("Try it:"))
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert re.search(r"send -c '.*my lamps\.yaml' 911 \"payments down\"", hint), hint
