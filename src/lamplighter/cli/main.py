"""The command line, one click group: `lamplighter COMMAND`.

Daemons: run, hub, agent. Clients of a running daemon: send, status, ack, snooze, lamps, test,
reload. Local: check, init, camera, backup, restore, discover, systemd-unit.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import getpass
import os
import shlex
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

from lamplighter import i18n
from lamplighter.cli import output as style
from lamplighter.cli.client import URL_ENV, Client, connect, daemon_url
from lamplighter.cli.lazy import LazyGroup
from lamplighter.cli.output import Output
from lamplighter.config import DEFAULT_CONFIG_NAME, Config, LoadedConfig
from lamplighter.drivers.base import redact
from lamplighter.errors import ConfigError, LamplighterError
from lamplighter.i18n import N_, _
from lamplighter.logs import LogFormat, configure_logging
from lamplighter.model import MAX_EVENT_ID, format_duration, parse_duration
from lamplighter.service import Service
from lamplighter.service.core import load_checked
from lamplighter.service.journal import backup_journal, hold_journal, restore_journal
from lamplighter.service.tokens import TOKEN_ENV, Token, ensure_token, find_token, token_path

TEST_TIMEOUT = 15.0  # seconds a lamp test waits for the lamp to show the level, and to go back
POLL_SECONDS = 0.05
RELOAD_TIMEOUT = 30.0  # a reload answers after removed lamps are back (5 s each at most, in parallel) and sources stop
EVENT_ID = click.IntRange(1, MAX_EVENT_ID)
MAX_LISTED_EVENTS = 5000  # the API's bound on /api/events?limit

config_option = click.option("-c", "--config", "config_path", type=click.Path(path_type=Path),
                             help=f"Configuration file (else $LAMPLIGHTER_CONFIG, else ./{DEFAULT_CONFIG_NAME}).")


def _load(config_path: Path | None) -> LoadedConfig:
    """The whole configuration, checked as the daemon will use it; every problem printed at once, exit 2."""
    try:
        loaded = load_checked(config_path)
    except ConfigError as exc:
        _exit_on(exc.problems)
        raise
    i18n.set_default(loaded.config.locale)
    return loaded


def said(word: str) -> str:
    """An API word (an outcome, an effect) in the CLI's language; --json keeps the API's."""
    return _(word) if word in WORDS else word


WORDS = frozenset((N_("shown"), N_("deduplicated"), N_("throttled"), N_("quiet"), N_("unrouted"), N_("resolved"),
                   N_("acknowledged"), N_("rejected"), N_("solid"), N_("blink"), N_("pulse")))


def _exit_on(problems: list[tuple[str, str]]) -> None:
    """Print each problem as `FILE:LINE path: message` and exit 2, if there are any."""
    if problems:
        for place, message in problems:
            click.echo(f"{place}: {message}" if place else message, err=True)
        raise SystemExit(2)


LAZY_COMMANDS = {  # imported only when named, so that `run` does not load the network scanners
    "discover": "lamplighter.cli.discover:discover",
    "systemd-unit": "lamplighter.cli.systemd_unit:systemd_unit",
}


@click.group(cls=LazyGroup, lazy=LAZY_COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="lamplighter", prog_name="lamplighter")
def cli() -> None:
    """Lamplighter: turn the events that matter into a lamp in the room."""


@cli.command(short_help="Run the daemon in the foreground until Ctrl-C.")
@config_option
@click.option("-v", "--verbose", is_flag=True, help="Log debug detail, the libraries' chatter included.")
@click.option("--log-format", type=click.Choice(["text", "json"]), default=None,
              help="Log lines as text or as one JSON object each (default: log.format in the file, else text).")
def run(config_path: Path | None, verbose: bool, log_format: LogFormat | None) -> None:
    """Run the daemon in the foreground until Ctrl-C or SIGTERM."""
    loaded = _load(config_path)
    configure_logging(log_format or loaded.config.log.format, verbose)
    from lamplighter.web.server import listen, serve

    lock = hold_journal(loaded.config.state_dir)  # one daemon per journal; `restore` waits for none
    listening = listen(loaded.config.server)  # a taken port ends here, before a token is printed
    token = ensure_token(loaded.config, os.environ)
    service = Service(loaded.config, config_path=loaded.path)
    _print_banner(loaded, token, config_path)
    with contextlib.suppress(KeyboardInterrupt), asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(serve(service, token.value, listening))
    lock.close()


def _print_banner(loaded: LoadedConfig, token: Token, config_path: Path | None) -> None:
    config = loaded.config
    base = daemon_url(config, {})
    click.echo(f"Lamplighter {version('lamplighter')} on {base}")
    click.echo(f"  config: {loaded.path or 'embedded default (no file)'}")
    click.echo(f"  state:  {config.state_dir}")
    for name, url in config.lamps.items():
        click.echo(f"  lamp {name}: {redact(url)}")
    first = next(iter(config.lamps))
    if token.generated:
        click.echo(_("A new API token was generated and saved to {path}.").format(path=token_path(config.state_dir)))
        click.echo(_("These links carry the token; they are printed only this once:"))
        click.echo("  " + _("the lamp:      {url}").format(url=f"{base}/lamp/{first}?token={token.value}"))
        click.echo("  " + _("the dashboard: {url}").format(url=f"{base}/dashboard?token={token.value}"))
    else:
        click.echo(_("Open the dashboard: {url}  (sign in with the token from {origin})").format(
            url=f"{base}/dashboard", origin=token.origin))
        click.echo(_("Open the lamp:      {url}").format(url=f"{base}/lamp/{first}?token=TOKEN"))
    config_flag = f" -c {shlex.quote(str(config_path))}" if config_path is not None else ""
    click.echo(_("Try it: {command}").format(command=f'{_command_name()} send{config_flag} 911 "payments down"'))


def _command_name() -> str:
    """How to call this program from the user's shell: `lamplighter` if it is on PATH, else its path."""
    if shutil.which("lamplighter"):
        return "lamplighter"
    return os.path.relpath(sys.argv[0]) if sys.argv[0].endswith("lamplighter") else "python -m lamplighter"


def client_command(func: Callable[..., None]) -> Callable[..., None]:
    """A command that talks to the running daemon: -c, --url, --token and --json, and a connected Client."""

    @config_option
    @click.option("--url", metavar="URL", default=None,
                  help=f"The daemon's address (else ${URL_ENV}, else server.listen of the config).")
    @click.option("--token", metavar="TOKEN", default=None,
                  help=f"The API token (else ${TOKEN_ENV}, else server.token, else the daemon's token file).")
    @click.option("--json", "as_json", is_flag=True, help="Print the answer as JSON, for programs.")
    @functools.wraps(func)
    def wrapper(config_path: Path | None, url: str | None, token: str | None, as_json: bool, **kwargs: Any) -> None:
        try:
            client = connect(config_path, url, token, os.environ)
        except ConfigError as exc:
            _exit_on(exc.problems)
        func(client, Output(as_json), **kwargs)

    return wrapper


@cli.command(short_help="Send an event: lamplighter send 911 \"payments down\".")
@client_command
@click.argument("level")
@click.argument("title")
@click.option("--body", default="", help="Longer text.")
@click.option("--sender", default=None, help="Who sends it (default: your user name).")
@click.option("--key", default="", help="Dedup key: the same key again refreshes instead of flashing.")
@click.option("--resolve", is_flag=True, help="Say the problem is over: ends the signal with this key.")
@click.option("--label", "labels", multiple=True, metavar="NAME=VALUE", help="A label; repeat for more.")
@click.option("--lamp", "lamps", multiple=True, metavar="NAME", help="Only on this lamp (a test); repeat for more.")
def send(client: Client, out: Output, level: str, title: str, body: str, sender: str | None, key: str,
         resolve: bool, labels: tuple[str, ...], lamps: tuple[str, ...]) -> None:
    """Send an event to the running daemon: `lamplighter send 911 "payments down"`."""
    payload = {"level": level, "title": title, "body": body, "sender": sender or getpass.getuser(), "key": key,
               "status": "resolved" if resolve else "firing", "labels": _parse_labels(labels), "lamps": list(lamps)}
    answer = client.request("POST", "/api/events", json=payload)
    outcome = style.outcome(answer["outcome"], said(answer["outcome"]))
    line = _("event {id}: {outcome}").format(id=answer["id"], outcome=outcome)
    out.show(answer, [line + _reasons(answer) + _where(answer)])


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


@cli.command(short_help="Show what each lamp shows and why, and recent events.")
@client_command
@click.option("-n", "--events", "count", type=click.IntRange(1, MAX_LISTED_EVENTS), default=10, show_default=True,
              help=f"How many recent events to list (1-{MAX_LISTED_EVENTS}).")
def status(client: Client, out: Output, count: int) -> None:
    """Show each lamp, what it shows and why, and the recent events."""
    lamps = client.request("GET", "/api/lamps")
    events = client.request("GET", "/api/events", params={"limit": count})
    lines = [_describe_lamp(lamp) for lamp in lamps] + [_("recent events:")]
    lines += [_describe_event(event) for event in events]
    out.show({"lamps": lamps, "events": events}, lines)


def _describe_event(event: dict[str, Any]) -> str:
    level, outcome = f"{event['level']:<6}", style.outcome(event["outcome"], f"{said(event['outcome']):<12}")
    return f"  {event['id']:>5}  {style.level(level)} {outcome} {event['title']}{_reasons(event)}{_where(event)}"


def _where(event: dict[str, Any]) -> str:
    """Where a shown event's signal is, in the daemon's words: on the lamp, queued behind a 911, ever shown..."""
    return f" — {event['where']['text']}" if event.get("where") else ""


def _describe_lamp(lamp: dict[str, Any]) -> str:
    showing = lamp["showing"]
    why = "  " + _("showing event {id} ({level}: {title})").format(
        id=showing["event_id"], level=style.level(showing["level"]), title=showing["title"]) \
        if showing and showing["event_id"] > 0 else \
        "  " + _("showing a test of {level}").format(level=showing["level"]) if showing else ""
    return f"{lamp['name']:<10} {lamp['url']:<28} {_look(lamp)}{why}{style.problem(_problem(lamp))}"


def _look(lamp: dict[str, Any]) -> str:
    state = lamp["state"]
    if state is None:
        return _("unknown")
    return _("on {color} {brightness}% {effect}").format(
        color=state["color"], brightness=state["brightness"], effect=said(state["effect"])) if state["on"] else _("off")


def _problem(lamp: dict[str, Any]) -> str:
    if not lamp["online"]:
        return "  " + _("OFFLINE: {error}").format(error=lamp["error"])
    return "" if lamp.get("reached", True) else "  " + _("NOT SHOWING IT: {error}").format(error=lamp["error"])


@cli.command(short_help="List lamps and sirens with their health.")
@client_command
def lamps(client: Client, out: Output) -> None:
    """List the lamps and sirens with their health; exits 1 if one is offline or not showing what it should."""
    found = client.request("GET", "/api/lamps")
    out.show(found, [f"{lamp['kind']:<6} " + _describe_lamp(lamp) for lamp in found])
    if any(_problem(lamp) for lamp in found):
        raise SystemExit(1)


@cli.command("test", short_help="Show a level on one lamp for a few seconds, then restore it.")
@client_command
@click.argument("lamp")
@click.argument("level", default="911")
@click.option("--for", "duration", default="5s", show_default=True, help="How long to show it.")
def test_lamp(client: Client, out: Output, lamp: str, level: str, duration: str) -> None:
    """Show LEVEL (default 911) on one lamp or siren for a few seconds, then put it back as it was.

    A test is not an event: nothing is stored, announced or escalated."""
    started = time.monotonic()
    answer = client.request("POST", f"/api/lamps/{lamp}/test", json={"level": level, "for": duration})
    shown = _wait_for_lamp(client, lamp, lambda view: view["showing"] is not None and view["showing"]["event_id"] < 0,
                           timeout=TEST_TIMEOUT)
    if shown is None or _problem(shown):
        click.echo(_("{lamp} did not show {level}").format(lamp=lamp, level=level)
                   + (_problem(shown) if shown else " " + _("in time")), err=True)
        raise SystemExit(1)
    took_ms = round((time.monotonic() - started) * 1000)
    if not out.as_json:
        out.show(None, [_("{lamp} shows {level}: {look} ({ms} ms)").format(
            lamp=lamp, level=level, look=_look(shown), ms=took_ms)])
    wait = answer["until"] - time.time() + TEST_TIMEOUT
    back = _wait_for_lamp(client, lamp, lambda view: view["showing"] is None, timeout=max(wait, TEST_TIMEOUT))
    if back is None or _problem(back):
        click.echo(_("{lamp} did not go back").format(lamp=lamp) + (_problem(back) if back else " " + _("in time")),
                   err=True)
        raise SystemExit(1)
    out.show({"lamp": lamp, "level": level, "shown": shown, "shown_after_ms": took_ms, "back": back},
             [_("{lamp} is back: {look}").format(lamp=lamp, look=_look(back))])


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


@cli.command(short_help="Acknowledge an event, or what the lamps show: the lamp goes back.")
@client_command
@click.argument("event_id", type=EVENT_ID, required=False)
@click.option("--all", "everything", is_flag=True, help="Without EVENT_ID: every active signal, not only the top one.")
@click.option("--by", default=None, help="Who acknowledges (default: your user name).")
def ack(client: Client, out: Output, event_id: int | None, everything: bool, by: str | None) -> None:
    """Acknowledge an event; without EVENT_ID, what the lamps show (the top signal; --all: every one)."""
    who = by or getpass.getuser()
    if event_id is not None:
        answer = client.request("POST", f"/api/events/{event_id}/ack", json={"by": who})
        out.show(answer, [_("event {id} acknowledged by {by}").format(id=answer["id"], by=answer["by"])])
        return
    answer = client.request("POST", "/api/ack", json={"by": who, "all": everything})
    out.show(answer, [_("event {id} ({level}: {title}) acknowledged by {by}").format(
        id=signal["event_id"], level=signal["level"], title=signal["title"], by=answer["by"])
        for signal in answer["acknowledged"]])


@cli.command(short_help="Keep the lamps dark for a while (30m, 2h) except for 911s.")
@client_command
@click.argument("duration", metavar="DURATION|off")
@click.option("--event", "event_id", type=EVENT_ID, default=None, help="Snooze only this event's signal.")
@click.option("--by", default=None, help="Who snoozes (default: your user name).")
def snooze(client: Client, out: Output, duration: str, event_id: int | None, by: str | None) -> None:
    """Keep the lamps dark for DURATION (30m, 2h) except for 911s; `off` ends the snooze."""
    if duration == "off":
        out.show(client.request("DELETE", "/api/snooze"), [_("snooze ended")])
        return
    seconds = _snooze_seconds(duration)
    body = {"for": seconds, "by": by or getpass.getuser()}
    path = f"/api/events/{event_id}/snooze" if event_id is not None else "/api/snooze"
    answer = client.request("POST", path, json=body)
    until = datetime.fromtimestamp(answer["snoozed_until"]).astimezone()
    what = _("event {id}").format(id=event_id) if event_id is not None else _("lamps")
    out.show(answer, [_("{what} snoozed for {duration}, until {time}").format(
        what=what, duration=format_duration(seconds), time=f"{until:%H:%M}")])


def _snooze_seconds(duration: str) -> float:
    """A snooze's length: a unit is required (a bare `2` would silently be 2 seconds)."""
    if duration.strip().replace(".", "", 1).isdigit():
        raise click.BadParameter(_("{given!r} has no unit: say {n}m for minutes, {n}h for hours or {n}s for seconds")
                                 .format(given=duration, n=duration), param_hint="DURATION")
    try:
        seconds = parse_duration(duration)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="DURATION") from None
    if seconds <= 0:
        raise click.BadParameter(_("a snooze must be longer than 0s (`off` ends one)"), param_hint="DURATION")
    return seconds


@cli.group()
def camera() -> None:
    """Camera tools: see what a camera source sees."""


@camera.command("test", short_help="Print what a camera sees, frame by frame.")
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


@cli.command(short_help="Validate the configuration: every problem with its line.")
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


@cli.command("reload", short_help="Make the daemon read its configuration again (SIGHUP).")
@client_command
def reload_config(client: Client, out: Output) -> None:
    """Make the running daemon read its configuration file again, without a restart (as SIGHUP does).

    The daemon reads the file it was started with (-c here only helps find the daemon and its token).
    Every problem in the file is printed as FILE:LINE path: message (exit 2), and the daemon keeps
    running with its configuration unchanged."""
    answer = client.request("POST", "/api/reload", refusals=(422,), timeout=RELOAD_TIMEOUT)
    if not answer.get("reloaded") and not out.as_json:
        click.echo(answer["error"], err=True)
        _exit_on([(problem["place"], problem["message"]) for problem in answer["problems"]])
    restart = [f"restart the daemon to apply: {', '.join(answer['needs_restart'])}"] \
        if answer.get("needs_restart") else []
    out.show(answer, [f"reloaded: {answer.get('summary')}", *restart])
    if not answer.get("reloaded"):
        raise SystemExit(2)


@cli.command(short_help="Write a commented starter configuration.")
@click.argument("path", type=click.Path(path_type=Path), default=DEFAULT_CONFIG_NAME)
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
def init(path: Path, force: bool) -> None:
    """Write a commented starter configuration (default ./lamplighter.yaml)."""
    if path.exists() and not force:
        raise click.ClickException(_("{path} exists; use --force to overwrite it").format(path=path))
    path.write_text(files("lamplighter.cli").joinpath("starter.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    click.echo(_("wrote {path}; check it with: lamplighter check -c {path}").format(path=path))


@cli.command("backup", short_help="Copy the journal to FILE, safe while the daemon runs.")
@config_option
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def backup_command(config_path: Path | None, file: Path) -> None:
    """Copy the journal to FILE, consistent even while the daemon runs (SQLite's online backup)."""
    summary = backup_journal(_load(config_path).config, file)
    click.echo(f"backed up {summary} to {file}")


@cli.command("restore", short_help="Put a backup FILE back as the journal (daemon stopped).")
@config_option
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def restore_command(config_path: Path | None, file: Path) -> None:
    """Replace the journal with the backup FILE (stop the daemon first); the old one is kept beside it."""
    summary, before = restore_journal(_load(config_path).config, file)
    click.echo(f"restored {summary} from {file}" + (f"; the journal before is kept as {before}" if before else ""))


@cli.command("hub", short_help="Run the hub: the daemon, publishing each room's state.")
@config_option
@click.option("-v", "--verbose", is_flag=True, help="Log debug detail.")
def hub_command(config_path: Path | None, verbose: bool) -> None:
    """Run the hub: the daemon, publishing each room's state to the broker under hub: for the room agents."""
    from lamplighter.cli.rooms import needs_hub, run_hub

    loaded = _load(config_path)
    configure_logging(loaded.config.log.format, verbose)
    _exit_on(needs_hub(loaded, rooms=True))
    run_hub(loaded)


@cli.command("agent", short_help="Run a room agent: show the hub's room on local lamps.")
@config_option
@click.option("--room", required=True, help="The room this agent shows (a name under the hub's rooms:).")
@click.option("-v", "--verbose", is_flag=True, help="Log debug detail.")
def agent_command(config_path: Path | None, room: str, verbose: bool) -> None:
    """Run a room agent: connect out to the hub's broker and show the room's state on this file's lamps."""
    from lamplighter.cli.rooms import needs_hub, run_agent

    loaded = _load(config_path)
    configure_logging(loaded.config.log.format, verbose)
    _exit_on(needs_hub(loaded, rooms=False))
    run_agent(loaded, room)



def main() -> None:
    try:
        cli()
    except LamplighterError as exc:
        raise SystemExit(f"error: {exc}") from None
