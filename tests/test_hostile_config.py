"""Hostile configuration files, tokens and journals (issue 12, items 1, 11, 13, 14).

Each goes through `lamplighter check` or `lamplighter run` as a user would meet it: a
`FILE:LINE path: message` or one `error:` line, never a traceback, and never a daemon that
starts without authentication.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from lamplighter.cli.main import cli
from lamplighter.config import parse_config
from lamplighter.errors import StoreError
from lamplighter.service.tokens import ensure_token, token_path
from tests.daemon import free_port
from tests.mail_signing import RULES

GOOD_TOKEN = "a-token-long-enough-0123"
RUN_TIMEOUT = 30.0


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> CliRunner:
    monkeypatch.chdir(tmp_path)
    for name in ("LAMPLIGHTER_CONFIG", "LAMPLIGHTER_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    return CliRunner()


def check(runner: CliRunner, path: Path, text: str | bytes, **env: str) -> Result:
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    result = runner.invoke(cli, ["check", "-c", str(path)], env={"XDG_STATE_HOME": str(path.parent), **env})
    assert not isinstance(result.exception, Exception), result.exception  # SystemExit is not one
    assert "Traceback" not in result.output
    return result


def run_daemon(workdir: Path, config_body: str, server: str = "",
               env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`lamplighter run` that is expected to refuse to start: its exit and output."""
    config = workdir / "lamplighter.yaml"
    server_keys = ", ".join(key for key in (f"listen: 127.0.0.1:{free_port()}", server) if key)
    config.write_text(f"server: {{{server_keys}}}\nstate_dir: {workdir / 'state'}\n{config_body}")
    clean = {k: v for k, v in os.environ.items() if k != "LAMPLIGHTER_TOKEN"}
    return subprocess.run([sys.executable, "-m", "lamplighter", "run", "-c", str(config)], capture_output=True,
                          text=True, timeout=RUN_TIMEOUT, env={**clean, **(env or {})})


# ---- 1: no empty or short token -------------------------------------------------------------------


def test_check_refuses_a_token_from_an_empty_environment_variable(runner: CliRunner, tmp_path: Path) -> None:
    result = check(runner, tmp_path / "c.yaml", "server: {token: '${LAMPLIGHTER_TOKEN}'}\n", LAMPLIGHTER_TOKEN="")
    assert result.exit_code == 2
    assert f"{tmp_path / 'c.yaml'}:1 server.token: environment variable LAMPLIGHTER_TOKEN is empty" in result.output


@pytest.mark.parametrize("token", ['""', "short"])
def test_check_refuses_a_short_token_in_the_file(runner: CliRunner, tmp_path: Path, token: str) -> None:
    result = check(runner, tmp_path / "c.yaml", f"server:\n  token: {token}\n")
    assert result.exit_code == 2
    assert f"{tmp_path / 'c.yaml'}:2 server.token: the API token needs at least 16 characters" in result.output


def test_check_and_run_refuse_an_empty_token_file_in_the_state_directory(runner: CliRunner, tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    token_path(state).write_text("\n")
    result = check(runner, tmp_path / "c.yaml", f"state_dir: {state}\n")
    assert result.exit_code == 2
    assert f"the API token from {token_path(state)} (delete it" in result.output and "at least 16" in result.output
    started = run_daemon(tmp_path, "")
    assert started.returncode != 0 and "Traceback" not in started.stderr
    assert "error: the API token from" in started.stderr and "has 0 characters" in started.stderr


def test_run_refuses_a_token_from_an_empty_environment_variable(tmp_path: Path) -> None:
    refused = run_daemon(tmp_path, "", server="token: '${EMPTY}'", env={"EMPTY": ""})
    assert refused.returncode == 2 and "server.token: environment variable EMPTY is empty" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_a_token_that_cannot_be_saved_leaves_no_file_and_says_why(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    config = parse_config(f"state_dir: {tmp_path / 'state'}\n", env={})

    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(StoreError, match=r"cannot save a new API token to .*token: No space left on device"):
        ensure_token(config, {})
    monkeypatch.undo()
    assert not token_path(tmp_path / "state").exists()
    assert list((tmp_path / "state").iterdir()) == []  # no temporary file left either
    generated = ensure_token(config, {})
    assert generated.generated and token_path(tmp_path / "state").read_text().strip() == generated.value
    assert oct(token_path(tmp_path / "state").stat().st_mode & 0o777) == "0o600"


# ---- 11 and 13: values and files check must report, not crash on ------------------------------------


@pytest.mark.parametrize(("value", "message"), [
    (".inf", "duration must be at most 365d"),
    (".nan", "duration must be at most 365d"),
    ("9" * 400, "duration must be at most 365d"),
    ("'" + "9" * 400 + "s'", "not a duration"),
    ("400d", "duration must be at most 365d"),
])
def test_check_reports_an_absurd_hold_with_its_place(runner: CliRunner, tmp_path: Path, value: str,
                                                     message: str) -> None:
    result = check(runner, tmp_path / "c.yaml", f"levels:\n  911:\n    hold: {value}\n")
    assert result.exit_code == 2 and f"c.yaml:3 levels.911.hold: {message}" in result.output, result.output
    assert len(result.output) < 500  # a 400-digit value is not echoed in full


def test_a_broken_lamp_url_is_reported_and_does_not_hide_other_problems(runner: CliRunner, tmp_path: Path) -> None:
    result = check(runner, tmp_path / "c.yaml", "lamps:\n  desk: 'wled://[::1'\n  porch: 'bulb://10.0.0.9'\n")
    assert result.exit_code == 2
    assert "c.yaml:2 lamps.desk: wled://[::1: not a lamp URL" in result.output
    assert "c.yaml:3 lamps.porch:" in result.output


def test_a_config_file_that_is_not_utf8_is_reported_with_its_line(runner: CliRunner, tmp_path: Path) -> None:
    result = check(runner, tmp_path / "c.yaml", b"lamps:\n  desk: virtual://desk\n  h\xe4ll: virtual://hall\n")
    assert result.exit_code == 2 and "c.yaml:3: not UTF-8 text: byte 0xe4" in result.output


def test_a_key_given_twice_is_reported_instead_of_dropping_the_first(runner: CliRunner, tmp_path: Path) -> None:
    result = check(runner, tmp_path / "c.yaml", "lamps:\n  desk: virtual://desk\nlevels: {}\nlamps:\n  hall: x://\n")
    assert result.exit_code == 2 and "c.yaml:4 lamps: given twice (first on line 1)" in result.output


def test_missing_tls_files_of_the_smtp_source_fail_check(runner: CliRunner, tmp_path: Path) -> None:
    result = check(runner, tmp_path / "c.yaml",
                   "sources:\n  - type: smtp\n    recipients: [lamp@example.com]\n    senders: [a@example.com]\n"
                   f"    tls_cert: {tmp_path / 'nope.pem'}\n    tls_key: {tmp_path / 'nope.key'}\n{RULES}")
    assert result.exit_code == 2 and f"tls_cert: no such file '{tmp_path / 'nope.pem'}'" in result.output


# ---- 14: a journal that cannot be used ---------------------------------------------------------------


def _damaged_journal(path: Path) -> None:
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE filler (x TEXT)")
    db.executemany("INSERT INTO filler VALUES (?)", [("x" * 500,) for _ in range(500)])
    db.commit()
    db.close()
    data = bytearray(path.read_bytes())
    data[4096 * 3:4096 * 3 + 200] = b"\xff" * 200  # a page in the middle
    path.write_bytes(bytes(data))


def _foreign_journal(path: Path) -> None:
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE signals (event_id INTEGER PRIMARY KEY, snoozed_until REAL)")
    db.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, what TEXT)")
    db.commit()
    db.close()


@pytest.mark.parametrize("make", [_damaged_journal, _foreign_journal])
def test_an_unusable_journal_stops_the_start_with_what_to_do(tmp_path: Path, make: object) -> None:
    state = tmp_path / "state"
    state.mkdir()
    journal = state / "lamplighter.db"
    make(journal)  # type: ignore[operator]
    started = run_daemon(tmp_path, "", env={"LAMPLIGHTER_TOKEN": GOOD_TOKEN})
    assert started.returncode != 0 and "Traceback" not in started.stderr, started.stderr
    assert f"error: cannot use the journal {journal}" in started.stderr
    assert f"Move it aside (mv {journal} {journal}.old)" in started.stderr


# ---- 5: a number out of range on the command line ----------------------------------------------------


@pytest.mark.parametrize("args", [["ack", "99999999999999999999"], ["snooze", "10m", "--event", "9" * 400]])
def test_an_event_id_out_of_range_is_a_usage_error_naming_the_range(runner: CliRunner, args: list[str]) -> None:
    result = runner.invoke(cli, args, env={"LAMPLIGHTER_TOKEN": GOOD_TOKEN, "LAMPLIGHTER_URL": "http://127.0.0.1:9"})
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "is not in the range 1<=x<=9223372036854775807" in result.output, result.output
