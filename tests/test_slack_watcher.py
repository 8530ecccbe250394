"""The channel watcher: which Slack messages become events, and the Events API over HTTP."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from lamplighter.errors import AuthError
from lamplighter.model import Status
from lamplighter.service import Service
from lamplighter.sources import build_sources
from lamplighter.sources.slack import SlackSource
from lamplighter.sources.slack.settings import WatchRule
from lamplighter.sources.slack.watcher import message_events
from tests.conftest import START, FakeClock
from tests.peers.fake_slack import APP_TOKEN, BOT_TOKEN, BOT_USER, SIGNING_SECRET, signed_headers

RULES = (
    WatchRule(channel="C0CI", match=re.compile(r"Build (?P<builder>\S+) failed"), level="912",
              title="{builder} failed", key="{builder}", resolve=re.compile(r"Build (?P<builder>\S+) passed"),
              senders=("B0CIBOT",)),
    WatchRule(channel="C0OPS", match=re.compile(r"(?i)\bdown\b"), level="911"),
)


def message(**fields: Any) -> dict[str, Any]:
    return {"type": "message", "channel": "C0CI", "bot_id": "B0CIBOT", "subtype": "bot_message",
            "text": "Build nightly failed", "ts": "1800000000.000100", **fields}


@pytest.mark.parametrize(("fields", "expected"), [
    ({}, ("912", "nightly failed", "nightly", Status.FIRING)),
    ({"text": "Build nightly passed"}, ("912", "nightly failed", "nightly", Status.RESOLVED)),
    ({"text": "", "attachments": [{"fallback": "Build arm64 failed at step 3"}]},
     ("912", "arm64 failed", "arm64", Status.FIRING)),
    ({"channel": "C0OPS", "bot_id": None, "subtype": None, "user": "U0ANA", "text": "API is DOWN &amp; out\nmore"},
     ("911", "API is DOWN & out", "", Status.FIRING)),
])
def test_a_matching_message_becomes_an_event(fields: dict[str, Any], expected: tuple[str, str, str, Status]) -> None:
    [event] = message_events(RULES, message(**fields), START, "slack")
    assert (event.level, event.title, event.key, event.status) == expected
    assert event.source == "slack" and event.labels["slack_ts"] == "1800000000.000100"


@pytest.mark.parametrize("fields", [
    {"text": "Build nightly started"},  # no pattern matches
    {"channel": "C0OTHER"},  # not a watched channel
    {"bot_id": "B0SOMEONE"},  # not a sender the rule accepts
    {"subtype": "message_changed"},  # an edit is not a new message
    {"type": "reaction_added"},
])
def test_other_messages_are_ignored(fields: dict[str, Any]) -> None:
    assert message_events(RULES, message(**fields), START, "slack") == []


def callback(event: dict[str, Any]) -> bytes:
    return json.dumps({"type": "event_callback", "team_id": "T0001", "event": event, "event_id": "Ev01",
                       "authorizations": [{"team_id": "T0001", "user_id": BOT_USER, "is_bot": True}]}).encode()


async def test_the_events_api_over_http_verifies_the_url_and_stores_watched_messages(
        running: Callable[..., Awaitable[Service]], clock: FakeClock) -> None:
    service = await running(f"sources:\n  - type: slack\n    signing_secret: {SIGNING_SECRET}\n    watch:\n"
                            "      - {channel: C0OPS, match: down, level: '911'}\n")
    source = service.sources["slack"]
    assert isinstance(source, SlackSource)

    async def post(body: bytes) -> tuple[int, dict[str, Any]]:
        headers = signed_headers(body, clock.now(), content_type="application/json")
        source.authenticate(headers, body)
        return await source.answer(headers, body, clock.now(), service.submit)

    challenge = json.dumps({"type": "url_verification", "token": "x", "challenge": "3eZbrw1aBm2rZgRNFdxV"}).encode()
    assert await post(challenge) == (200, {"challenge": "3eZbrw1aBm2rZgRNFdxV"})
    ours = {"type": "message", "channel": "C0OPS", "user": BOT_USER, "bot_id": "B0LAMPBOT", "text": "site down"}
    assert await post(callback(ours)) == (200, {})
    assert service.store.count_events() == 0  # our own announcement, echoed back: never an event
    assert await post(callback({**ours, "user": "U0ANA", "bot_id": None})) == (200, {})
    [stored] = service.store.recent_events(1)
    assert (stored.level, stored.title, stored.sender) == ("911", "site down", "U0ANA")


def test_a_socket_mode_only_source_refuses_http_requests() -> None:
    [source] = build_sources([{"type": "slack", "app_token": APP_TOKEN, "bot_token": BOT_TOKEN}],
                             FakeClock()).values()
    assert isinstance(source, SlackSource)
    with pytest.raises(AuthError, match="source slack takes no HTTP requests: set its signing_secret"):
        source.authenticate(signed_headers(b"x", START), b"x")
