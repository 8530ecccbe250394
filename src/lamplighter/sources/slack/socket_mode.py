"""Socket Mode: the app dials out to Slack over a websocket, so a home machine needs no public URL.

slack_bolt's AsyncApp routes the envelopes Slack sends (slash commands, message events) to
our listeners and acknowledges each on the same socket; a slash command's reply travels in
that acknowledgement. We ask for the websocket URL ourselves (apps.connections.open with the
app token), so a wrong token shows as the source's health instead of a retry loop in the
log. Slack's `hello` on a new socket means connected; a socket found dead means
disconnected while slack_sdk reconnects (also when Slack asks it to, with `disconnect`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.app.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_sdk.socket_mode.async_client import AsyncBaseSocketModeClient
from slack_sdk.web.async_client import AsyncWebClient

from lamplighter.backoff import Backoff
from lamplighter.sources.slack.api import API_ERRORS, describe
from lamplighter.sources.slack.replies import Reply


class _ClientTokenWins(logging.Filter):
    """Bolt also reads SLACK_BOT_TOKEN from the environment and warns that the client's token wins:
    the client carries the configured bot token, so that warning is noise."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "`token` will be unused" not in record.getMessage()


bolt_log = logging.getLogger(f"{__name__}.bolt")
bolt_log.addFilter(_ClientTokenWins())

HEALTH_EVERY = 5.0  # seconds between looks at the socket
CLOSE_TIMEOUT = 2.0  # seconds a stopping daemon waits for Slack to confirm the socket's close
STUCK_AFTER = 120.0  # seconds a connection may stay down before it starts over with a new URL

CommandListener = Callable[[dict[str, Any]], Awaitable[Reply]]
MessageListener = Callable[[dict[str, Any]], None]


def build_app(client: AsyncWebClient, commands: Iterable[str], on_command: CommandListener,
              on_message: MessageListener | None) -> AsyncApp:
    """A Bolt app that answers `commands` with `on_command` and hands channel messages to `on_message`."""
    # Our listeners finish at once (everything they do is local), so Bolt may send the acknowledgement
    # when they return; without process_before_response it polls for it every 10 ms.
    app = AsyncApp(client=client, request_verification_enabled=False, logger=bolt_log, process_before_response=True)

    async def command(ack: AsyncAck, command: dict[str, Any]) -> None:
        await ack((await on_command(command)).to_json())

    for name in commands:
        app.command(name)(command)
    if on_message is not None:
        async def message(event: dict[str, Any]) -> None:
            on_message(event)

        app.event("message")(message)
    return app


class SocketLink:
    """One Socket Mode connection for an app, kept up until cancelled, its health reported.

    slack_sdk reconnects by itself, but when a websocket handshake fails it retries the same
    (by then expired) URL forever; a connection down for STUCK_AFTER starts over from scratch.
    """

    def __init__(self, app: AsyncApp, app_token: str, connected: Callable[[], None],
                 disconnected: Callable[[str], None]) -> None:
        self._app = app
        self._app_token = app_token
        self._connected = connected
        self._disconnected = disconnected

    async def run(self) -> None:
        backoff = Backoff()
        while True:
            await self._session(backoff)
            await asyncio.sleep(backoff.next())

    async def _session(self, backoff: Backoff) -> None:
        """Connect with a fresh URL and watch the connection; returns when it has been down too long."""
        client = AsyncSocketModeHandler(self._app, self._app_token).client
        client.message_listeners.append(self._on_message)
        try:
            client.wss_uri = await self._socket_url(client.web_client, backoff)
            await asyncio.wait_for(client.connect(), STUCK_AFTER)  # type: ignore[no-untyped-call]
            backoff.reset()
            await self._watch(client)
        except TimeoutError:
            self._disconnected("Slack's Socket Mode URL did not connect; asking for a new one")
        finally:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(client.close(), CLOSE_TIMEOUT)  # type: ignore[no-untyped-call]

    async def _socket_url(self, web: AsyncWebClient, backoff: Backoff) -> str:
        while True:
            try:
                return str((await web.apps_connections_open(app_token=self._app_token))["url"])
            except API_ERRORS as exc:
                self._disconnected(f"Slack did not open Socket Mode: {describe(exc)}")
            await asyncio.sleep(backoff.next())

    async def _watch(self, client: AsyncBaseSocketModeClient) -> None:
        down_for = 0.0
        while down_for < STUCK_AFTER:
            await asyncio.sleep(HEALTH_EVERY)
            if await client.is_connected():
                self._connected()
                down_for = 0.0
            else:
                self._disconnected("the Socket Mode connection to Slack is down; reconnecting")
                down_for += HEALTH_EVERY

    async def _on_message(self, client: AsyncBaseSocketModeClient, message: dict[str, Any], raw: str | None) -> None:
        if message.get("type") == "hello":
            self._connected()
