"""Command-line entry point: `lamplighter run|send|status|ack|snooze|lamps|test|check|init|camera`."""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import logging
import os
import shutil
import sys
import time
from collections.abc import Callable
from datetime import datetime
from importlib.metadata import version
from importlib.resources import files
from pathlib import Path
from typing import Any

import click
import uvloop

from lamplighter.cli.client import Client, daemon_url
from lamplighter.cli.discover import discover
from lamplighter.config import DEFAULT_CONFIG_NAME, Config, LoadedConfig, load_config
from lamplighter.drivers.base import redact
from lamplighter.errors import ConfigError, LamplighterError
from lamplighter.model import MAX_EVENT_ID, format_duration
from lamplighter.service import Service, validate
from lamplighter.service.tokens import Token, ensure_token, find_token, token_path

TEST_TIMEOUT = 15.0  # seconds a lamp test waits for the lamp to show the level, and to go back
POLL_SECONDS = 0.05
EVENT_ID = click.IntRange(1, MAX_EVENT_ID)

config_option = click.option("-c", "--config", "config_path", type=click.Path(path_type=Path),
                             help=f"Configuration file (else $LAMPLIGHTER_CONFIG, else ./{DEFAULT_CONFIG_NAME}).")


def _load(config_path: Path | None) -> LoadedConfig:
    try:
        loaded = load_config(config_path)
        problems = [(loaded.place(path), message) for path, message in validate(loaded.config)]
    except ConfigError as exc:
        problems = exc.problems
    _exit_on(problems)
    return loaded


def _exit_on(problems: list[tuple[str, str]]) -> None:
    """Print each problem as `FILE:LINE path: message` and exit 2, if there are any."""
    if problems:
        for place, message in problems:
            click.echo(f"{place}: {message}" if place else message, err=True)
        raise SystemExit(2)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(version("lamplighter"), prog_name="lamplighter")
def cli() -> None:
    """Lamplighter: turn the events that matter into a lamp in the room."""


@cli.command()
@config_option
@click.option("-v", "--verbose", is_flag=True, help="Log debug detail.")
def run(config_path: Path | None, verbose: bool) -> None:
    """Run the daemon in the foreground until Ctrl-C or SIGTERM."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    loaded = _load(config_path)
    token = ensure_token(loaded.config, os.environ)
    service = Service(loaded.config)
    _print_banner(loaded, token)
    from lamplighter.web.server import serve

    with contextlib.suppress(KeyboardInterrupt), asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(serve(service, token.value))


def _print_banner(loaded: LoadedConfig, token: Token) -> None:
    config = loaded.config
    base = daemon_url(config, {})
    click.echo(f"Lamplighter {version('lamplighter')} on {base}")
    click.echo(f"  config: {loaded.path or 'embedded default (no file)'}")
    click.echo(f"  state:  {config.state_dir}")
    for name, url in config.lamps.items():
        click.echo(f"  lamp {name}: {redact(url)}")
    first = next(iter(config.lamps))
    if token.generated:
        click.echo(f"A new API token was generated and saved to {token_path(config.state_dir)}.")
        click.echo("These links carry the token; they are printed only this once:")
        click.echo(f"  the lamp:      {base}/lamp/{first}?token={token.value}")
        click.echo(f"  the dashboard: {base}/dashboard?token={token.value}")
    else:
        click.echo(f"Open the dashboard: {base}/dashboard  (sign in with the token from {token.origin})")
        click.echo(f"Open the lamp:      {base}/lamp/{first}?token=TOKEN")
    click.echo(f'Try it: {_command_name()} send 911 "payments down"')


def _command_name() -> str:
    """How to call this program from the user's shell: `lamplighter` if it is on PATH, else its path."""
    if shutil.which("lamplighter"):
        return "lamplighter"
    return os.path.relpath(sys.argv[0]) if sys.argv[0].endswith("lamplighter") else "python -m lamplighter"


@cli.command()
@config_option
@click.argument("level")
@click.argument("title")
@click.option("--body", default="", help="Longer text.")
@click.option("--sender", default=None, help="Who sends it (default: your user name).")
@click.option("--key", default="", help="Dedup key: the same key again refreshes instead of flashing.")
@click.option("--resolve", is_flag=True, help="Say the problem is over: ends the signal with this key.")
@click.option("--label", "labels", multiple=True, metavar="NAME=VALUE", help="A label; repeat for more.")
@click.option("--lamp", "lamps", multiple=True, metavar="NAME", help="Only on this lamp (a test); repeat for more.")
def send(config_path: Path | None, level: str, title: str, body: str, sender: str | None, key: str,
         resolve: bool, labels: tuple[str, ...], lamps: tuple[str, ...]) -> None:
    """Send an event to the running daemon, e.g. `lamplighter send 911 "payments down"`."""
    client = Client(_load(config_path).config, os.environ)
    payload = {"level": level, "title": title, "body": body, "sender": sender or getpass.getuser(), "key": key,
               "status": "resolved" if resolve else "firing", "labels": _parse_labels(labels), "lamps": list(lamps)}
    answer = client.request("POST", "/api/events", json=payload)
    click.echo(f"event {answer['id']}: {answer['outcome']}" + _reasons(answer) + _where(answer))


def _parse_labels(labels: tuple[str, ...]) -> dict[str, str]:
    parsed = {}
    for label in labels:
        name, sep, value = label.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"{label!r} is not NAME=VALUE", param_hint="--label")
        parsed[name] = value
    return parsed


def _reasons(event: dict[str, Any]) -> str:
    return f" ({'; '.join(event['reasons'])})" if event.get("reasons") else ""


def _where(event: dict[str, Any]) -> str:
    """Where a shown event's signal is, in the daemon's words: on the lamp, queued behind a 911, ever shown..."""
    return f" — {event['where']['text']}" if event.get("where") else ""


@cli.command()
@config_option
@click.option("-n", "--events", "count", default=10, show_default=True, help="How many recent events to list.")
def status(config_path: Path | None, count: int) -> None:
    """Show each lamp, what it shows and why, and the recent events."""
    client = Client(_load(config_path).config, os.environ)
    for lamp in client.request("GET", "/api/lamps"):
        click.echo(_describe_lamp(lamp))
    click.echo("recent events:")
    for event in client.request("GET", "/api/events", params={"limit": count}):
        click.echo(f"  {event['id']:>5}  {event['level']:<6} {event['outcome']:<12} {event['title']}"
                   + _reasons(event) + _where(event))


def _describe_lamp(lamp: dict[str, Any]) -> str:
    showing = lamp["showing"]
    why = f"  showing event {showing['event_id']} ({showing['level']}: {showing['title']})" \
        if showing and showing["event_id"] > 0 else f"  showing a test of {showing['level']}" if showing else ""
    return f"{lamp['name']:<10} {lamp['url']:<28} {_look(lamp)}{why}{_problem(lamp)}"


def _look(lamp: dict[str, Any]) -> str:
    state = lamp["state"]
    if state is None:
        return "unknown"
    return f"on {state['color']} {state['brightness']}% {state['effect']}" if state["on"] else "off"


def _problem(lamp: dict[str, Any]) -> str:
    if not lamp["online"]:
        return f"  OFFLINE: {lamp['error']}"
    return "" if lamp.get("reached", True) else f"  NOT SHOWING IT: {lamp['error']}"


@cli.command()
@config_option
def lamps(config_path: Path | None) -> None:
    """List the lamps and sirens with their health; exits 1 if one is offline or not showing what it should."""
    client = Client(_load(config_path).config, os.environ)
    found = client.request("GET", "/api/lamps")
    for lamp in found:
        click.echo(f"{lamp['kind']:<6} " + _describe_lamp(lamp))
    if any(_problem(lamp) for lamp in found):
        raise SystemExit(1)


@cli.command("test")
@config_option
@click.argument("lamp")
@click.argument("level", default="911")
@click.option("--for", "duration", default="5s", show_default=True, help="How long to show it.")
def test_lamp(config_path: Path | None, lamp: str, level: str, duration: str) -> None:
    """Show LEVEL (default 911) on one lamp or siren for a few seconds, then put it back as it was.

    A test is not an event: nothing is stored, announced or escalated."""
    client = Client(_load(config_path).config, os.environ)
    started = time.monotonic()
    answer = client.request("POST", f"/api/lamps/{lamp}/test", json={"level": level, "for": duration})
    shown = _wait_for_lamp(client, lamp, lambda view: view["showing"] is not None and view["showing"]["event_id"] < 0,
                           timeout=TEST_TIMEOUT)
    if shown is None or _problem(shown):
        click.echo(f"{lamp} did not show {level}{_problem(shown) if shown else ' in time'}", err=True)
        raise SystemExit(1)
    click.echo(f"{lamp} shows {level}: {_look(shown)} ({(time.monotonic() - started) * 1000:.0f} ms)")
    wait = answer["until"] - time.time() + TEST_TIMEOUT
    back = _wait_for_lamp(client, lamp, lambda view: view["showing"] is None, timeout=max(wait, TEST_TIMEOUT))
    if back is None or _problem(back):
        click.echo(f"{lamp} did not go back{_problem(back) if back else ' in time'}", err=True)
        raise SystemExit(1)
    click.echo(f"{lamp} is back: {_look(back)}")


def _wait_for_lamp(client: Client, lamp: str, ready: Callable[[dict[str, Any]], bool],
                   timeout: float) -> dict[str, Any] | None:
    """Poll the lamp's view until `ready` holds or it has a problem; None after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        view: dict[str, Any] = next(v for v in client.request("GET", "/api/lamps") if v["name"] == lamp)
        if ready(view) or _problem(view):
            return view
        time.sleep(POLL_SECONDS)
    return None


@cli.command()
@config_option
@click.argument("event_id", type=EVENT_ID, required=False)
@click.option("--all", "everything", is_flag=True, help="Without EVENT_ID: every active signal, not only the top one.")
@click.option("--by", default=None, help="Who acknowledges (default: your user name).")
def ack(config_path: Path | None, event_id: int | None, everything: bool, by: str | None) -> None:
    """Acknowledge an event; without EVENT_ID, what the lamps show (the top signal; --all: every one)."""
    client = Client(_load(config_path).config, os.environ)
    who = by or getpass.getuser()
    if event_id is not None:
        answer = client.request("POST", f"/api/events/{event_id}/ack", json={"by": who})
        click.echo(f"event {answer['id']} acknowledged by {answer['by']}")
        return
    answer = client.request("POST", "/api/ack", json={"by": who, "all": everything})
    for signal in answer["acknowledged"]:
        click.echo(f"event {signal['event_id']} ({signal['level']}: {signal['title']}) acknowledged by {answer['by']}")


@cli.command()
@config_option
@click.argument("duration")
@click.option("--event", "event_id", type=EVENT_ID, default=None, help="Snooze only this event's signal.")
@click.option("--by", default=None, help="Who snoozes (default: your user name).")
def snooze(config_path: Path | None, duration: str, event_id: int | None, by: str | None) -> None:
    """Keep the lamps dark for DURATION (e.g. 30m) except for 911s; `off` ends the snooze."""
    client = Client(_load(config_path).config, os.environ)
    if duration == "off":
        client.request("DELETE", "/api/snooze")
        click.echo("snooze ended")
        return
    body = {"for": duration, "by": by or getpass.getuser()}
    path = f"/api/events/{event_id}/snooze" if event_id is not None else "/api/snooze"
    answer = client.request("POST", path, json=body)
    until = datetime.fromtimestamp(answer["snoozed_until"]).astimezone()
    click.echo(f"{f'event {event_id}' if event_id is not None else 'lamps'} snoozed until {until:%H:%M}")


@cli.group()
def camera() -> None:
    """Camera tools: see what a camera source sees."""


@camera.command("test")
@config_option
@click.argument("source")
@click.option("--frames", type=int, default=None,
              help="Stop after this many analysed frames (default: the end of a file; Ctrl-C for a stream).")
@click.option("--save", "save_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Write the first frame and every frame with people here, with zones and boxes drawn.")
def camera_test_command(config_path: Path | None, source: str, frames: int | None, save_dir: Path | None) -> None:
    """Print what a camera sees, frame by frame. SOURCE: a camera's name under sources:, or a URL or video file."""
    from lamplighter.sources.camera.tool import camera_entry, camera_test

    entry = camera_entry(_load(config_path).config, source)
    raise SystemExit(camera_test(entry, click.echo, max_frames=frames, save_dir=save_dir))


@cli.command()
@config_option
def check(config_path: Path | None) -> None:
    """Validate the configuration and report every problem with its place in the file."""
    loaded = _load(config_path)
    try:
        find_token(loaded.config, os.environ)
    except ConfigError as exc:
        _exit_on(exc.problems)
    click.echo(f"{loaded.path or 'embedded default'}: OK")
    _summarize(loaded.config)


def _summarize(config: Config) -> None:
    click.echo(f"  listen: {config.server.listen}")
    for name, url in config.lamps.items():
        click.echo(f"  lamp {name}: {redact(url)}")
    for name, url in config.sirens.items():
        click.echo(f"  siren {name}: {redact(url)}")
    for level in sorted(config.resolved_levels().values(), key=lambda lv: -lv.priority):
        hold = "until acknowledged" if level.hold is None else format_duration(level.hold)
        lamps = ", ".join(level.lamps) if level.lamps is not None else "all lamps"
        sirens = f", sirens {', '.join(level.sirens)} after {format_duration(level.escalate_after)}" \
            if level.sirens else ""
        click.echo(f"  level {level.name}: {level.color} {level.effect}, priority {level.priority}, "
                   f"hold {hold}, on {lamps}{sirens}")


@cli.command()
@click.argument("path", type=click.Path(path_type=Path), default=DEFAULT_CONFIG_NAME)
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
def init(path: Path, force: bool) -> None:
    """Write a commented starter configuration (default ./lamplighter.yaml)."""
    if path.exists() and not force:
        raise click.ClickException(f"{path} exists; use --force to overwrite it")
    path.write_text(files("lamplighter.cli").joinpath("starter.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    click.echo(f"wrote {path}; check it with: lamplighter check -c {path}")


cli.add_command(discover)


def main() -> None:
    try:
        cli()
    except LamplighterError as exc:
        raise SystemExit(f"error: {exc}") from None
