"""The keys of a `type: slack` source: checked with their path, secrets never shown."""

from __future__ import annotations

from typing import Any

import pytest

from lamplighter.config import parse_config
from lamplighter.errors import ConfigError
from lamplighter.sources import build_sources
from lamplighter.sources.slack import SlackSource
from lamplighter.sources.slack.settings import EVERYONE
from tests.conftest import FakeClock
from tests.peers.fake_slack import APP_TOKEN, BOT_TOKEN, SIGNING_SECRET

SOCKET = {"type": "slack", "app_token": APP_TOKEN, "bot_token": BOT_TOKEN}


def build(**entry: Any) -> SlackSource:
    [source] = build_sources([{"type": "slack", **entry}], FakeClock()).values()
    assert isinstance(source, SlackSource)
    return source


def problems(**entry: Any) -> dict[str, str]:
    with pytest.raises(ConfigError) as caught:
        build(**entry)
    return dict(caught.value.problems)


def test_socket_mode_with_the_default_commands() -> None:
    source = build(app_token=APP_TOKEN, bot_token=BOT_TOKEN)
    settings = source.slack_settings
    assert source.name == "slack"
    assert {name: (c.level, c.allow) for name, c in settings.commands.items()} == {
        "/911": ("911", (EVERYONE,)), "/912": ("912", (EVERYONE,))}
    assert (settings.lamp.command, settings.lamp.test_level, settings.lamp.audience("ack")) == ("/lamp", "912",
                                                                                                (EVERYONE,))


def test_http_only_needs_just_the_signing_secret_and_is_healthy_without_a_connection() -> None:
    source = build(signing_secret=SIGNING_SECRET)
    assert source.api is None and source.health.connected


def test_yaml_numbers_are_level_names_and_command_names_are_lower_case() -> None:
    source = build(signing_secret=SIGNING_SECRET, commands={"/Page": {"level": 911, "allow": ["U0BOSS"]}},
                   lamp={"command": "/Light", "test_level": 912})
    assert source.slack_settings.commands["/page"].level == "911"
    assert (source.slack_settings.lamp.command, source.slack_settings.lamp.test_level) == ("/light", "912")


def test_every_problem_is_named_with_its_path() -> None:
    assert problems() == {"sources.0": "set app_token (Socket Mode) or signing_secret (HTTP at /hooks/NAME), or both"}
    assert problems(app_token=APP_TOKEN) == {"sources.0": "Socket Mode (app_token) needs bot_token too"}
    assert problems(signing_secret="s", commands={"911": {"level": "911"}}) == {
        "sources.0.commands": "'911' is not a slash command name: write it with its slash, e.g. /911"}
    assert problems(signing_secret="s", commands={"/911": {"level": "911", "allow": ["jiwoo"]}}) == {
        "sources.0.commands./911.allow": "'jiwoo' is not a Slack user id (U.../W...), user group id (S...) or "
                                         "'everyone'"}
    assert problems(signing_secret="s", lamp={"allow": {"ack": ["S0STAFF"]}}) == {
        "sources.0": "allow lists a user group (S...): set bot_token (scope usergroups:read) to look it up"}
    assert problems(signing_secret="s", lamp={"allow": {"dance": []}})["sources.0.lamp.allow.dance.[key]"].startswith(
        "Input should be 'ack', 'snooze' or 'test'")
    assert problems(signing_secret="s", lamp={"command": "/911"}) == {
        "sources.0": "lamp.command '/911' is also under commands: give it another name"}


def test_watch_rules_are_checked_when_the_file_is_read() -> None:
    def watch(**rule: Any) -> dict[str, str]:
        return problems(signing_secret="s", watch=[{"channel": "C0CI", "match": "failed", "level": "912", **rule}])

    assert watch(channel="#builds") == {"sources.0.watch.0.channel": "'#builds' is not a channel id: use the id "
                                        "(C0123ABCD, at the bottom of the channel's details in Slack), not its name"}
    assert "Input should be a valid regular expression" in watch(match="(unclosed")["sources.0.watch.0.match"]
    assert watch(title="{builder} failed") == {"sources.0.watch.0": "{builder} in '{builder} failed' is not a named "
                                               "group of 'failed' nor one of {text}, {user}, {channel}"}
    assert watch(title="{text.upper}")["sources.0.watch.0"].endswith("placeholders are plain names such as {text} "
                                                                     "or {builder}")
    assert watch(senders=["ci-bot"]) == {"sources.0.watch.0.senders": "'ci-bot' is not a user id (U.../W...) or "
                                         "bot id (B...)"}


def test_secrets_come_from_the_environment_and_are_never_shown() -> None:
    text = ("sources:\n  - {type: slack, app_token: '${SLACK_APP_TOKEN}', bot_token: '${SLACK_BOT_TOKEN}',"
            " signing_secret: '${SLACK_SIGNING_SECRET}'}\n")
    env = {"SLACK_APP_TOKEN": APP_TOKEN, "SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET}
    config = parse_config(text, env)
    source = build(**{k: v for k, v in config.sources[0].model_dump().items() if k != "type"})
    assert source.slack_settings.secret("bot_token") == BOT_TOKEN
    shown = repr(source.slack_settings) + str(source.slack_settings.model_dump())
    assert not any(secret in shown for secret in env.values())
    wrong = problems(app_token=BOT_TOKEN, bot_token=APP_TOKEN)
    assert wrong == {"sources.0.bot_token": "must be a token starting with xoxb- (the value is not shown)",
                     "sources.0.app_token": "must be a token starting with xapp- (the value is not shown)"}
    assert not any(secret in str(wrong) for secret in env.values())
