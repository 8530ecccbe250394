"""Slack on loopback, speaking its wire protocols, for tests of the Slack source.

Slack cannot run here, so this plays its part from its published formats, with the
captured slash-command form body in tests/data/slack/ as the template of every command:

- the Web API: `POST|GET /api/METHOD` with `Authorization: Bearer TOKEN`, answering HTTP 200
  with `{"ok": true, ...}` or `{"ok": false, "error": "invalid_auth"}` as Slack does:
  auth.test, apps.connections.open (app token only: a `ws://127.0.0.1` URL to the socket
  below), chat.postMessage and usergroups.users.list;
- Socket Mode: `GET /link/?ticket=...` upgrades to a websocket that greets with `hello`, then
  carries envelopes (`slash_commands`, `events_api`) and waits for each acknowledgement
  `{"envelope_id": ..., "payload": ...}`; `disconnect` asks the client to reconnect;
- HTTP requests as Slack posts them to a Request URL: `signed_headers` signs a body
  (`v0=` HMAC-SHA256 of `v0:{timestamp}:{body}`).

    async with FakeSlack() as slack:
        ...api_url=slack.api_url...
        ack = await slack.slash_command(text="payments down")   # the client's acknowledgement
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import time
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlencode

from aiohttp import WSMsgType, web

from tests.daemon import free_port

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "slack" / "slack-slash-command.txt"
BOT_TOKEN = "xoxb-1111-2222-fakebottoken"
APP_TOKEN = "xapp-1-A123456-3333-fakeapptoken"
SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
TEAM_ID = "T0001"
APP_ID = "A123456"
BOT_USER = "U0LAMPBOT"
BOT_ID = "B0LAMPBOT"
ACK_TIMEOUT = 10.0  # generous: a test waits this long for an acknowledgement before failing


def sample_fields(**overrides: str) -> dict[str, str]:
    """The captured slash command's fields, some replaced."""
    return {**dict(parse_qsl(SAMPLE.read_text().strip(), keep_blank_values=True)), **overrides}


def form_body(**overrides: str) -> bytes:
    """The form body Slack posts for a slash command."""
    return urlencode(sample_fields(**overrides)).encode()


def signed_headers(body: bytes, timestamp: float | None = None, secret: str = SIGNING_SECRET,
                   content_type: str = "application/x-www-form-urlencoded") -> dict[str, str]:
    """The headers Slack sends with a request body, signed with the app's signing secret."""
    stamp = str(int(time.time() if timestamp is None else timestamp))
    digest = hmac.new(secret.encode(), f"v0:{stamp}:".encode() + body, hashlib.sha256).hexdigest()
    return {"Content-Type": content_type, "X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": f"v0={digest}"}


class FakeSlack:
    """The Web API and the Socket Mode websocket, in this process, on a free loopback port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.posted: list[dict[str, Any]] = []  # every chat.postMessage: its arguments, and the `ts` it was given
        self.calls: list[str] = []  # every Web API method called, in order
        self.groups: dict[str, list[str]] = {}  # usergroups.users.list answers by group id
        self.group_error = ""  # when set, usergroups.users.list fails with this Slack error
        self.delay = 0.0  # seconds every Web API answer takes (a slow Slack)
        self.expired_urls = 0  # this many apps.connections.open answers give a URL whose handshake fails
        self.acks: dict[str, float] = {}  # envelope id -> seconds from sending it to its acknowledgement
        self._sockets: list[web.WebSocketResponse] = []
        self._waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    async def __aenter__(self) -> FakeSlack:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_get("/link/", self._link)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        trace: TracebackType | None) -> None:
        for socket in self._sockets:
            await socket.close()
        assert self._runner is not None
        await self._runner.cleanup()

    # ---- the Web API ---------------------------------------------------------------------

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        self.calls.append(method)
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        args = {**request.query, **await _body_args(request)}
        await asyncio.sleep(self.delay)
        return web.json_response(self._answer(method, token, args))

    def _answer(self, method: str, token: str, args: dict[str, Any]) -> dict[str, Any]:
        if method == "apps.connections.open":
            if token != APP_TOKEN:
                return _error("not_allowed_token_type" if token.startswith("xoxb-") else "invalid_auth")
            path, self.expired_urls = ("expired", self.expired_urls - 1) if self.expired_urls else ("link", 0)
            return {"ok": True, "url": f"ws://127.0.0.1:{self.port}/{path}/?ticket=t{next(self._ids)}&app_id={APP_ID}"}
        if token != BOT_TOKEN:
            return _error("invalid_auth")
        answer = {"auth.test": self._auth_test, "chat.postMessage": self._post_message,
                  "usergroups.users.list": self._group_users}.get(method)
        return answer(args) if answer else _error("unknown_method")

    def _auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "url": "https://example.slack.com/", "team": "Example", "user": "lamplighter",
                "team_id": TEAM_ID, "user_id": BOT_USER, "bot_id": BOT_ID, "is_enterprise_install": False}

    def _post_message(self, args: dict[str, Any]) -> dict[str, Any]:
        ts = f"{int(time.time())}.{len(self.posted) + 1:06d}"
        self.posted.append({**args, "ts": ts})
        message = {"type": "message", "user": BOT_USER, "bot_id": BOT_ID, "text": args.get("text"), "ts": ts}
        return {"ok": True, "channel": args.get("channel"), "ts": ts, "message": message}

    def _group_users(self, args: dict[str, Any]) -> dict[str, Any]:
        if self.group_error:
            return _error(self.group_error)
        group = str(args.get("usergroup"))
        return {"ok": True, "users": self.groups[group]} if group in self.groups else _error("no_such_subteam")

    # ---- Socket Mode ---------------------------------------------------------------------

    async def _link(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse(autoping=True)
        await socket.prepare(request)
        self._sockets.append(socket)
        await socket.send_json({"type": "hello", "num_connections": len(self._sockets),
                                "debug_info": {"host": "applink-fake", "build_number": 1,
                                               "approximate_connection_time": 18060},
                                "connection_info": {"app_id": APP_ID}})
        async for message in socket:
            if message.type == WSMsgType.TEXT:
                self._acknowledged(json.loads(message.data))
        self._sockets.remove(socket)
        return socket

    def _acknowledged(self, ack: dict[str, Any]) -> None:
        waiting = self._waiting.pop(str(ack.get("envelope_id")), None)
        if waiting is not None and not waiting.done():
            waiting.set_result(ack)

    async def connected(self, count: int = 1, timeout: float = ACK_TIMEOUT) -> None:
        """Wait until `count` sockets were opened in all (reconnections count)."""
        deadline = time.monotonic() + timeout
        while self.calls.count("apps.connections.open") < count or not self._sockets:
            assert time.monotonic() < deadline, f"no Socket Mode connection number {count} within {timeout}s"
            await asyncio.sleep(0.01)

    async def send_envelope(self, kind: str, payload: dict[str, Any], accepts_response_payload: bool,
                            **extra: Any) -> dict[str, Any]:
        """Send an envelope on the newest socket; the acknowledgement (which must come within 3 s for Slack)."""
        envelope_id = f"e{next(self._ids)}-{kind}"
        waiting: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[envelope_id] = waiting
        sent = time.perf_counter()
        await self._sockets[-1].send_json({"envelope_id": envelope_id, "type": kind, "payload": payload,
                                           "accepts_response_payload": accepts_response_payload, **extra})
        ack = await asyncio.wait_for(waiting, ACK_TIMEOUT)
        self.acks[envelope_id] = time.perf_counter() - sent
        return ack

    async def slash_command(self, **fields: str) -> dict[str, Any]:
        """A slash command as Slack sends it in Socket Mode: the form fields as the payload."""
        return await self.send_envelope("slash_commands", sample_fields(**fields), accepts_response_payload=True)

    async def message_event(self, **message: Any) -> dict[str, Any]:
        """A `message` event from the Events API, as Socket Mode carries it."""
        event = {"type": "message", "channel": "C2147483705", "user": "U2147483697", "text": "",
                 "ts": f"{time.time():.6f}", "event_ts": f"{time.time():.6f}", "channel_type": "channel", **message}
        payload = {"token": "legacy-verification-token", "team_id": TEAM_ID, "api_app_id": APP_ID, "event": event,
                   "type": "event_callback", "event_id": f"Ev{next(self._ids):08d}", "event_time": int(time.time()),
                   "authorizations": [{"enterprise_id": None, "team_id": TEAM_ID, "user_id": BOT_USER,
                                       "is_bot": True, "is_enterprise_install": False}],
                   "is_ext_shared_channel": False}
        return await self.send_envelope("events_api", payload, accepts_response_payload=False,
                                        retry_attempt=0, retry_reason="")

    async def ask_to_reconnect(self) -> None:
        """What Slack sends before it recycles a connection."""
        await self._sockets[-1].send_json({"type": "disconnect", "reason": "refresh_requested",
                                           "debug_info": {"host": "applink-fake"}})


def _error(code: str) -> dict[str, Any]:
    return {"ok": False, "error": code}


async def _body_args(request: web.Request) -> dict[str, Any]:
    if request.content_type == "application/json":
        found: dict[str, Any] = await request.json()
        return found
    return dict(await request.post())
