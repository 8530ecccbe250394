"""Slash commands, the same over HTTP and Socket Mode: a SlashCommand in, a Reply out.

    /911 TEXT, /912 TEXT        send the command's level, TEXT as the title (names configurable)
    /lamp ack [EVENT]           end what the lamps show (or the signal of that event)
    /lamp status                what each lamp shows
    /lamp why [EVENT]           the stored reasons behind what the lamps show (or that event)
    /lamp snooze 30m | off      keep the lamps dark a while; levels that bypass quiet hours still show
    /lamp test                  send the test level, to see the whole chain work

Everything here is quick and local (the journal, the router, the lamp views) except a
user group lookup, which permissions bound to 1.5 s: the reply is due within 3 s.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from lamplighter.errors import EventError, StoreError
from lamplighter.model import MAX_EVENT_ID, Clock, Event, Signal, SignalAction, StoredEvent, make_event, parse_duration
from lamplighter.sources.base import Facade, Submit
from lamplighter.sources.slack import replies
from lamplighter.sources.slack.permissions import GroupMembers, decide
from lamplighter.sources.slack.replies import Reply
from lamplighter.sources.slack.settings import LampAction, SlackSettings

MAX_TITLE = 500
MAX_SNOOZE = 7 * 86400.0
GUARDED: tuple[LampAction, ...] = ("ack", "snooze", "test")

FIELDS = ("command", "text", "user_id", "user_name", "channel_id", "channel_name", "team_id")
OnAcknowledged = Callable[[int, str], None]
"""Told the signal id and the Slack user id after a signal is acknowledged from Slack."""


@dataclass(frozen=True)
class SlashCommand:
    """The fields of a slash command that Lamplighter uses, as Slack posts them."""

    command: str
    text: str
    user_id: str
    user_name: str = ""
    channel_id: str = ""
    channel_name: str = ""
    team_id: str = ""

    @classmethod
    def from_fields(cls, fields: Mapping[str, Any]) -> SlashCommand:
        """From the form fields (HTTP) or the envelope payload (Socket Mode); EventError names a missing one."""
        values = {name: str(fields.get(name) or "").strip() for name in FIELDS}
        missing = next((name for name in ("command", "user_id") if not values[name]), None)
        if missing is not None:
            raise EventError(missing, "missing from the slash command")
        return cls(**{**values, "command": values["command"].lower(), "text": replies.unescape(values["text"])})

    @property
    def sender(self) -> str:
        """Readable and unique: the rate limit counts per sender."""
        return f"{self.user_name} ({self.user_id})" if self.user_name else self.user_id

    @property
    def where(self) -> str:
        return f"#{self.channel_name}" if self.channel_name else self.channel_id or "a direct message"

    def labels(self) -> dict[str, str]:
        found = {"slack_user": self.user_id, "slack_channel": self.channel_id, "slack_team": self.team_id}
        return {name: value for name, value in found.items() if value}


def parse_form(body: bytes) -> dict[str, str]:
    """A slash command's form body as fields."""
    try:
        return dict(parse_qsl(body.decode(), keep_blank_values=True))
    except UnicodeDecodeError:
        raise EventError("body", "not UTF-8 form data") from None


class Commands:
    """Answers slash commands for one Slack source."""

    def __init__(self, source: str, settings: SlackSettings, clock: Clock, groups: GroupMembers,
                 on_acknowledged: OnAcknowledged) -> None:
        self._source = source
        self._settings = settings
        self._clock = clock
        self._groups = groups
        self._on_acknowledged = on_acknowledged

    async def handle(self, command: SlashCommand, submit: Submit, facade: Facade | None) -> Reply:
        if command.command == self._settings.lamp.command:
            return await self._lamp(command, submit, facade)
        sends = self._settings.commands.get(command.command)
        if sends is None:
            return replies.unknown_command(command.command)
        if not command.text:
            return replies.say_what(command.command)
        refusal = await self._refusal(sends.allow, command, f"send {sends.level}")
        return refusal or self._send(command, sends.level, command.text, submit, sends.reply == "in_channel",
                                          facade=facade)

    async def _refusal(self, audience: tuple[str, ...], command: SlashCommand, what: str) -> Reply | None:
        decision = await decide(audience, command.user_id, self._groups)
        return None if decision.allowed else replies.refused(what, audience, decision.problems)

    def _send(self, command: SlashCommand, level: str, title: str, submit: Submit, in_channel: bool,
              key: str = "", facade: Facade | None = None) -> Reply:
        now = self._clock.now()
        event = _event(command, level, title, self._source, now, key)
        try:
            receipt = submit(event)
        except StoreError as exc:
            return replies.not_accepted(str(exc))
        where = facade.where_words(receipt.signal_id) if facade and receipt.signal_id is not None else None
        return replies.outcome(event, receipt, now, command.user_id, in_channel, where)

    async def _lamp(self, command: SlashCommand, submit: Submit, facade: Facade | None) -> Reply:
        verb, _, argument = command.text.partition(" ")
        verb, argument = verb.lower(), argument.strip()
        guarded = next((action for action in GUARDED if action == verb), None)
        if guarded is not None:
            refusal = await self._refusal(self._settings.lamp.audience(guarded), command,
                                          f"use {self._settings.lamp.command} {guarded}")
            if refusal is not None:
                return refusal
        if verb == "test":
            title = f"test from {command.user_name or command.user_id}"
            return self._send(command, self._settings.lamp.test_level, title, submit, False,
                              key=f"slack-test:{command.user_id}:{self._clock.now()}", facade=facade)
        answer = {"ack": self._ack, "status": _status, "why": self._why, "snooze": self._snooze}.get(verb)
        if answer is None:
            return replies.usage(self._settings.lamp.command)
        return replies.not_running() if facade is None else answer(command, argument, facade)

    def _ack(self, command: SlashCommand, argument: str, facade: Facade) -> Reply:
        if not argument:
            return self._ack_showing(command, facade)
        record = self._record(argument, facade)
        if isinstance(record, Reply):
            return record
        result = facade.acknowledge(record.id, command.sender)
        if result is not SignalAction.DONE:
            return replies.not_acknowledged(record.id, result)
        signal_id = record.signal_id or record.id
        self._on_acknowledged(signal_id, command.user_id)
        return replies.acknowledged(command.user_id, [(record.level, record.title, signal_id)])

    def _ack_showing(self, command: SlashCommand, facade: Facade) -> Reply:
        ended = [s for s in _showing(facade) if facade.acknowledge(s.event_id, command.sender) is SignalAction.DONE]
        for signal in ended:
            self._on_acknowledged(signal.event_id, command.user_id)
        if not ended:
            return replies.nothing_showing("acknowledge")
        return replies.acknowledged(command.user_id, [(s.level, s.title, s.event_id) for s in ended])

    def _why(self, command: SlashCommand, argument: str, facade: Facade) -> Reply:
        if argument:
            record = self._record(argument, facade)
            return record if isinstance(record, Reply) else replies.why([record])
        records = [r for s in _showing(facade) if (r := facade.event_record(s.event_id))]
        return replies.why(records) if records else replies.nothing_showing("explain")

    def _record(self, argument: str, facade: Facade) -> StoredEvent | Reply:
        """The stored event an argument names, or the reply saying why there is none."""
        text = argument.lstrip("#")
        if not text.isdigit() or len(text) > len(str(MAX_EVENT_ID)):
            return replies.usage(self._settings.lamp.command)
        return facade.event_record(int(text)) or replies.no_event(int(text))

    def _snooze(self, command: SlashCommand, argument: str, facade: Facade) -> Reply:
        lamp = self._settings.lamp.command
        if argument.lower() == "off":
            facade.end_snooze()
            return replies.snooze_ended(command.user_id)
        if not argument:
            return replies.bad_duration("a snooze needs a length", lamp)
        try:
            seconds = parse_duration(argument)
        except ValueError as exc:
            return replies.bad_duration(str(exc), lamp)
        if not 0 < seconds <= MAX_SNOOZE:
            return replies.bad_duration("a snooze lasts longer than 0s and at most 7d", lamp)
        facade.snooze_all(seconds, command.sender)
        return replies.snoozed(command.user_id, seconds, self._clock.now() + seconds, lamp)


def _event(command: SlashCommand, level: str, title: str, source: str, now: float, key: str = "") -> Event:
    """The event a slash command sends."""
    body = f"sent with {command.command} in {command.where}"
    return make_event(level, title[:MAX_TITLE], received_at=now, body=body, sender=command.sender, source=source,
                      key=key, labels=command.labels())


def _showing(facade: Facade) -> list[Signal]:
    """The signals the lamps show now, each once."""
    return list({view.showing.event_id: view.showing for view in facade.lamp_views() if view.showing}.values())


def _status(command: SlashCommand, argument: str, facade: Facade) -> Reply:
    return replies.status(facade.lamp_views())
