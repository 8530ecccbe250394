"""`type: slack`: slash commands over Socket Mode or HTTP, the channel watcher, and posting to Slack.

Over HTTP, Slack posts to /hooks/NAME: `authenticate` checks the signature and `answer`
replies (a slash command's reply, the Events API's challenge, watched messages stored).
Over Socket Mode, `run` keeps the websocket up. Both hand slash commands to the same
Commands and messages to the same watcher. Announcements posted through this app are
remembered by signal, so that `/lamp ack` also says who acknowledged in their thread.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Coroutine, Mapping
from typing import Any

from lamplighter.errors import AuthError, EventError, StoreError
from lamplighter.model import Clock, Event
from lamplighter.sources.base import SourceHealth, SourceSettings, Submit, WebhookSource
from lamplighter.sources.slack.api import SlackApi
from lamplighter.sources.slack.commands import Commands, SlashCommand, parse_form
from lamplighter.sources.slack.permissions import GroupMembers
from lamplighter.sources.slack.replies import Reply, mention
from lamplighter.sources.slack.settings import SlackSettings
from lamplighter.sources.slack.signature import RequestVerifier
from lamplighter.sources.slack.socket_mode import MessageListener, SocketLink, build_app
from lamplighter.sources.slack.watcher import message_events
from lamplighter.untrusted import load_json

log = logging.getLogger(__name__)

THREADS_KEPT = 1000  # announcements remembered for a reply in their thread


class SlackSource(WebhookSource):
    """A Slack app: commands in, channel messages in, announcements out."""

    source_type = "slack"
    Settings = SlackSettings

    def __init__(self, name: str, settings: SourceSettings, clock: Clock) -> None:
        super().__init__(name, settings, clock)
        assert isinstance(settings, SlackSettings)
        self.slack_settings = settings
        secret, token = settings.secret("signing_secret"), settings.secret("bot_token")
        self._verifier = RequestVerifier(secret, clock, self.replays) if secret else None
        self.api = SlackApi(token, settings.api_url) if token else None
        self.commands = Commands(name, settings, clock, GroupMembers(self._group_members, clock), self._acknowledged)
        self._threads: OrderedDict[int, list[tuple[str, str]]] = OrderedDict()
        self._tasks: set[asyncio.Task[Any]] = set()
        if settings.app_token is not None:  # blind after a minute if it never connects
            self.health = SourceHealth(connected=False, error="connecting to Slack", disconnected_since=clock.now())

    # ---- HTTP at /hooks/NAME ------------------------------------------------------------------

    def authenticate(self, headers: Mapping[str, str], body: bytes) -> None:
        if self._verifier is None:
            raise AuthError(f"source {self.name} takes no HTTP requests: set its signing_secret to receive them")
        self._verifier.check(headers, body)

    def parse(self, headers: Mapping[str, str], body: bytes, received_at: float) -> list[Event]:
        """The watched messages in an Events API callback; slash commands are for `answer`."""
        return self._callback_events(_json(body), received_at) if _is_json(headers) else []

    async def answer(self, headers: Mapping[str, str], body: bytes, received_at: float,
                     submit: Submit) -> tuple[int, dict[str, Any]]:
        """The HTTP status and JSON for an authenticated request: a command's reply, or the Events API's."""
        if not _is_json(headers):
            command = SlashCommand.from_fields(parse_form(body))
            return 200, (await self.commands.handle(command, submit, self.facade)).to_json()
        payload = _json(body)
        if payload.get("type") == "url_verification":
            return 200, {"challenge": str(payload.get("challenge", ""))}
        for event in self._callback_events(payload, received_at):
            submit(event)
        return 200, {}

    def _callback_events(self, payload: Mapping[str, Any], received_at: float) -> list[Event]:
        message = payload.get("event")
        if payload.get("type") != "event_callback" or not isinstance(message, dict) or _ours(payload, message):
            return []
        return message_events(self.slack_settings.watch, message, received_at, self.name)

    # ---- Socket Mode --------------------------------------------------------------------------

    async def run(self, submit: Submit) -> None:
        """Keep the Socket Mode connection up; with no app_token Slack comes over HTTP and this returns."""
        app_token = self.slack_settings.secret("app_token")
        if app_token is None or self.api is None:
            return
        names = [*self.slack_settings.commands, self.slack_settings.lamp.command]

        async def on_command(fields: dict[str, Any]) -> Reply:
            return await self.commands.handle(SlashCommand.from_fields(fields), submit, self.facade)

        watching = self._on_message(submit) if self.slack_settings.watch else None
        app = build_app(self.api.client, names, on_command, watching)
        await SocketLink(app, app_token, self.mark_connected, self.mark_disconnected).run()

    def _on_message(self, submit: Submit) -> MessageListener:
        def on_message(message: dict[str, Any]) -> None:
            for event in message_events(self.slack_settings.watch, message, self.clock.now(), self.name):
                try:
                    submit(event)
                except StoreError as exc:
                    log.error("source %s: a watched message was not stored: %s", self.name, exc)
        return on_message

    # ---- posting --------------------------------------------------------------------------------

    async def post_announcement(self, channel: str, text: str, signal_id: int | None) -> None:
        """Post to a channel with the bot token; remember the message to reply in its thread on ack."""
        assert self.api is not None, "announcers through a Slack source are built only when it has a bot_token"
        ts = await self.api.post(channel, text)
        if ts is not None and signal_id is not None:
            self._threads.setdefault(signal_id, []).append((channel, ts))
            self._threads.move_to_end(signal_id)
            while len(self._threads) > THREADS_KEPT:
                self._threads.popitem(last=False)

    def _acknowledged(self, signal_id: int, user_id: str) -> None:
        threads = self._threads.pop(signal_id, [])
        if self.api is None:
            return
        for channel, ts in threads:
            self._background(self.api.post(channel, f"✅ Acknowledged by {mention(user_id)}.", thread_ts=ts))

    def _background(self, work: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _group_members(self, group: str) -> frozenset[str]:
        assert self.api is not None, "the settings require bot_token when allow lists a user group"
        return await self.api.group_members(group)


def _is_json(headers: Mapping[str, str]) -> bool:
    lowered = {name.lower(): value for name, value in headers.items()}
    return lowered.get("content-type", "").startswith("application/json")


def _json(body: bytes) -> dict[str, Any]:
    payload = load_json(body)
    if not isinstance(payload, dict):
        raise EventError("body", "an Events API request is a JSON object")
    return payload


def _ours(payload: Mapping[str, Any], message: Mapping[str, Any]) -> bool:
    """A message our own bot posted (an announcement): never an event, or it would feed itself."""
    authorizations = payload.get("authorizations")
    bots = {a.get("user_id") for a in authorizations if isinstance(a, dict) and a.get("is_bot")
            and isinstance(a.get("user_id"), str)} if isinstance(authorizations, list) else set()
    user = message.get("user")
    return isinstance(user, str) and user in bots
