"""The keys of a `type: slack` source, checked when the file is read.

    sources:
      - type: slack
        app_token: ${SLACK_APP_TOKEN}        # Socket Mode (no public URL): xapp-...
        bot_token: ${SLACK_BOT_TOKEN}        # xoxb-...: replies in threads, announcements, user groups
        signing_secret: ${SLACK_SIGNING_SECRET}   # HTTP: POST /hooks/NAME
        commands:
          /911: {level: "911", allow: [S0STAFF], reply: in_channel}
          /912: {level: "912"}               # allow unset: everyone in the workspace
        lamp: {command: /lamp, allow: {ack: [S0STAFF], snooze: [S0STAFF]}}
        watch:
          - {channel: C0CIBUILDS, match: 'Build (?P<builder>\\S+) failed', level: "912",
             title: "{builder} failed", key: "{builder}", resolve: 'Build (?P<builder>\\S+) passed'}

Who may do what is a list of Slack ids: users (`U...`, `W...`), user groups (`S...`) or
`everyone`. Secrets are SecretStr, so no repr or log line shows them.
"""

from __future__ import annotations

import re
import string
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, SecretStr, field_validator, model_validator

from lamplighter.sources.base import SourceSettings

EVERYONE = "everyone"
_PERSON_OR_GROUP = re.compile(r"[UWS][A-Z0-9]{2,}")
_SENDER = re.compile(r"[UWB][A-Z0-9]{2,}")
_CHANNEL = re.compile(r"[CGD][A-Z0-9]{2,}")
MESSAGE_FIELDS = frozenset({"text", "user", "channel"})
TOKEN_PREFIXES = {"bot_token": "xoxb-", "app_token": "xapp-"}


def _check_audience(ids: tuple[str, ...]) -> tuple[str, ...]:
    for given in ids:
        if given != EVERYONE and not _PERSON_OR_GROUP.fullmatch(given):
            raise ValueError(f"{given!r} is not a Slack user id (U.../W...), user group id (S...) or {EVERYONE!r}")
    return ids


LevelName = Annotated[str, BeforeValidator(lambda value: str(value) if isinstance(value, int) else value)]
"""A level name; YAML reads `level: 911` as a number."""

Audience = Annotated[tuple[str, ...], AfterValidator(_check_audience)]
"""Who may: Slack user ids, user group ids, or `everyone`."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CommandSettings(_Strict):
    """A slash command that sends a level, e.g. `/911 payments API is down`."""

    level: LevelName
    allow: Audience = (EVERYONE,)
    reply: Literal["ephemeral", "in_channel"] = "ephemeral"  # how a `shown` answer is posted


LampAction = Literal["ack", "snooze", "test"]


class LampCommandSettings(_Strict):
    """`/lamp ack|status|why|snooze 30m|test`; status and why are open to everyone."""

    command: str = "/lamp"
    test_level: LevelName = "912"
    allow: dict[LampAction, Audience] = {}

    @field_validator("command")
    @classmethod
    def _name(cls, value: str) -> str:
        return command_name(value)

    def audience(self, action: LampAction) -> tuple[str, ...]:
        return self.allow.get(action, (EVERYONE,))


class WatchRule(_Strict):
    """Messages in one channel that match `match` become events; `resolve` ones end them."""

    channel: str
    match: re.Pattern[str]
    level: LevelName
    title: str = "{text}"
    key: str = ""
    resolve: re.Pattern[str] | None = None
    senders: tuple[str, ...] = ()  # user or bot ids (U..., W..., B...); empty: anyone

    @field_validator("channel")
    @classmethod
    def _channel_id(cls, value: str) -> str:
        if not _CHANNEL.fullmatch(value):
            raise ValueError(f"{value!r} is not a channel id: use the id (C0123ABCD, at the bottom of the "
                             "channel's details in Slack), not its name")
        return value

    @field_validator("senders")
    @classmethod
    def _sender_ids(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        wrong = [given for given in value if not _SENDER.fullmatch(given)]
        if wrong:
            raise ValueError(f"{wrong[0]!r} is not a user id (U.../W...) or bot id (B...)")
        return value

    @model_validator(mode="after")
    def _placeholders_known(self) -> WatchRule:
        for pattern in filter(None, (self.match, self.resolve)):
            known = MESSAGE_FIELDS | set(pattern.groupindex)
            for template in (self.title, self.key):
                unknown = sorted(_placeholders(template) - known)
                if unknown:
                    raise ValueError(f"{{{unknown[0]}}} in {template!r} is not a named group of {pattern.pattern!r} "
                                     f"nor one of {{text}}, {{user}}, {{channel}}")
        return self


def _placeholders(template: str) -> set[str]:
    """The `{name}` fields of a template; ValueError for anything but plain names."""
    try:
        names = {field for _, field, _, _ in string.Formatter().parse(template) if field is not None}
    except ValueError as exc:
        raise ValueError(f"{template!r}: {exc} (write {{{{ for a literal brace)") from None
    if not all(name.isidentifier() for name in names):
        raise ValueError(f"{template!r}: placeholders are plain names such as {{text}} or {{builder}}")
    return names


DEFAULT_COMMANDS = {"/911": CommandSettings(level="911"), "/912": CommandSettings(level="912")}


class SlackSettings(SourceSettings):
    """Socket Mode when `app_token` is set; HTTP at /hooks/NAME when `signing_secret` is set."""

    bot_token: SecretStr | None = None
    app_token: SecretStr | None = None
    signing_secret: SecretStr | None = None
    commands: dict[str, CommandSettings] = DEFAULT_COMMANDS
    lamp: LampCommandSettings = LampCommandSettings()
    watch: tuple[WatchRule, ...] = ()
    api_url: str = "https://slack.com/api/"  # for a proxy, or a test double of Slack

    @field_validator("bot_token", "app_token")
    @classmethod
    def _token_kind(cls, value: SecretStr | None, info: Any) -> SecretStr | None:
        prefix = TOKEN_PREFIXES[info.field_name]
        if value is not None and not value.get_secret_value().startswith(prefix):
            raise ValueError(f"must be a token starting with {prefix} (the value is not shown)")
        return value

    @field_validator("commands")
    @classmethod
    def _command_names(cls, value: dict[str, CommandSettings]) -> dict[str, CommandSettings]:
        return {command_name(name): settings for name, settings in value.items()}

    @model_validator(mode="after")
    def _consistent(self) -> SlackSettings:
        if self.app_token is None and self.signing_secret is None:
            raise ValueError("set app_token (Socket Mode) or signing_secret (HTTP at /hooks/NAME), or both")
        if self.app_token is not None and self.bot_token is None:
            raise ValueError("Socket Mode (app_token) needs bot_token too")
        if self.lamp.command in self.commands:
            raise ValueError(f"lamp.command {self.lamp.command!r} is also under commands: give it another name")
        if self.bot_token is None and any(i.startswith("S") for i in self.audiences()):
            raise ValueError("allow lists a user group (S...): set bot_token (scope usergroups:read) to look it up")
        return self

    def audiences(self) -> list[str]:
        lists = [c.allow for c in self.commands.values()] + list(self.lamp.allow.values())
        return [given for ids in lists for given in ids]

    def secret(self, name: Literal["bot_token", "app_token", "signing_secret"]) -> str | None:
        value: SecretStr | None = getattr(self, name)
        return None if value is None else value.get_secret_value()


def command_name(name: str) -> str:
    """`/911` as Slack sends it (lower case); ValueError for a name without its slash."""
    if not re.fullmatch(r"/[\w.-]+", name):
        raise ValueError(f"{name!r} is not a slash command name: write it with its slash, e.g. /911")
    return name.lower()
