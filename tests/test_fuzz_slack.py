"""Property: no signed Slack request (a slash command's form, an Events API callback) gives a 5xx or a
traceback, and every watched message answered 200 is in the journal; the form parser takes any bytes.

The requests are signed as Slack signs them, so they pass the signature check and reach the
command and watcher code; one that repeats an earlier body is a replay and gets 401.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from lamplighter.errors import EventError
from lamplighter.sources.slack.commands import SlashCommand, parse_form
from tests.conftest import START
from tests.fuzzing import (
    AUTH,
    KEYS,
    TEXT,
    TRIED,
    Daemon,
    budget,
    daemon_in_thread,
    fresh_daemon,  # noqa: F401  (the `daemon` fixture)
    json_values,
    mutated,
)
from tests.peers.fake_slack import SIGNING_SECRET, sample_fields, signed_headers

WORDS = st.sampled_from(["ack", "snooze", "status", "why", "help", "30m", "1", "-1", "all", "off", "99999999999"])
COMMAND_TEXT = st.lists(WORDS | TEXT, max_size=4).map(" ".join)
FORMS = st.fixed_dictionaries({**{name: st.just(value) | TEXT for name, value in sample_fields().items()},
                               "command": st.sampled_from(["/911", "/912", "/lamp", "/door"]) | TEXT,
                               "text": COMMAND_TEXT})
MESSAGE = {"type": "message", "channel": "C0OPS", "user": "U0ANA", "text": "site down", "ts": "1800000000.000100",
           "attachments": [{"fallback": "down"}]}
CALLBACKS = st.fixed_dictionaries({"type": st.sampled_from(["event_callback", "url_verification"]) | TEXT,
                                   "event": mutated(MESSAGE), "challenge": TEXT,
                                   "authorizations": st.lists(st.dictionaries(KEYS, json_values()), max_size=2)})


@pytest.fixture(scope="module")
def shared_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    config = (f"lamps: {{desk: virtual://desk}}\nsources:\n  - type: slack\n    signing_secret: {SIGNING_SECRET}\n"
              "    watch:\n      - {channel: C0OPS, match: down, level: '911', title: '{text}'}\n")
    with daemon_in_thread(Path(tmp_path_factory.mktemp("fuzz-slack")), config) as running:
        yield running


def test_any_signed_slash_command_is_answered_without_a_5xx(daemon: Daemon) -> None:
    with daemon.client() as client:

        @budget(80)
        @given(fields=FORMS | st.dictionaries(TEXT, TEXT, max_size=5))
        def check(fields: dict[str, str]) -> None:
            TRIED["slack: signed slash commands"] += 1
            body = "&".join(f"{name}={value}" for name, value in fields.items()).encode()
            answer = client.post("/hooks/slack", content=body, headers=signed_headers(body, START))
            assert answer.status_code in (200, 401, 422), answer.text

        check()
    assert not daemon.tracebacks


def test_any_signed_events_api_callback_is_answered_without_a_5xx_and_kept(daemon: Daemon) -> None:
    before = {e["id"] for e in daemon.client().get("/api/events", params={"limit": 5000}, headers=AUTH).json()}
    shown = 0
    with daemon.client() as client:

        @budget(80)
        @given(payload=CALLBACKS | json_values())
        @example(payload={"type": "event_callback", "event": {**MESSAGE, "subtype": ["bot_message"]}})  # were 500s
        @example(payload={"type": "event_callback", "event": {**MESSAGE, "text": [{"a": 1}], "attachments": [3]}})
        @example(payload={"type": "event_callback", "event": {**MESSAGE, "user": ["U0ANA"]},
                          "authorizations": [{"is_bot": True, "user_id": ["U0ANA"]}]})
        def check(payload: Any) -> None:
            nonlocal shown
            TRIED["slack: signed Events API callbacks"] += 1
            body = json.dumps(payload).encode()
            answer = client.post("/hooks/slack", content=body,
                                 headers=signed_headers(body, START, content_type="application/json"))
            assert answer.status_code in (200, 401, 422), answer.text
            if answer.status_code == 200 and isinstance(payload, dict) and payload.get("type") == "event_callback":
                shown += 1

        check()
        stored = {e["id"] for e in client.get("/api/events", params={"limit": 5000}, headers=AUTH).json()} - before
    assert len(stored) <= shown
    assert not daemon.tracebacks


@budget(300)
@given(body=st.binary(max_size=300) | FORMS.map(lambda f: "&".join(f"{k}={v}" for k, v in f.items()).encode()))
def test_the_form_parser_takes_any_bytes(body: bytes) -> None:
    TRIED["slack: form parser"] += 1
    with contextlib.suppress(EventError):  # names the missing field
        SlashCommand.from_fields(parse_form(body))
