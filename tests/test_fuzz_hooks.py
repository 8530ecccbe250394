"""Property: no body sent to a webhook (Alertmanager, Grafana, Buildbot, generic) gives a 5xx or an
error outside our hierarchy, and every event answered 202 is in the journal.

Each parser is fuzzed in process (fast, many examples), then through the daemon's real
POST /hooks/NAME on loopback with correct credentials (fewer examples, the whole path).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.datastructures import Headers

from lamplighter.errors import EventError
from lamplighter.sources import build_sources
from lamplighter.sources.base import WebhookSource
from lamplighter.sources.webhooks.common import Template, Value
from tests.conftest import START, FakeClock
from tests.fuzzing import (
    AUTH,
    TEXT,
    TRIED,
    Daemon,
    budget,
    daemon_in_thread,
    fresh_daemon,  # noqa: F401  (the `daemon` fixture)
    json_values,
    mutated,
)
from tests.test_hooks_common import hmac_hex, sample

GRAFANA_SECRET = "grafana-fuzz-secret"
SOURCES = {
    "alertmanager": ({"type": "alertmanager", "name": "am", "token": "am-token"}, "alertmanager.json"),
    "grafana": ({"type": "grafana", "name": "graf", "secret": GRAFANA_SECRET}, "grafana.json"),
    "buildbot": ({"type": "buildbot", "name": "bb", "token": "bb-token"}, "buildbot-httpstatuspush-failure.json"),
    "generic": ({"type": "webhook", "name": "kuma", "token": "kuma-token", "level": 911,
                 "title": "{monitor.name} is down: {heartbeat.msg}", "key": "kuma-{monitor.id}",
                 "labels": {"url": "{monitor.url|'none'}"},
                 "status": {"from": "{heartbeat.status}", "map": {0: "firing", 1: "resolved"}}}, None),
}
KUMA = {"heartbeat": {"monitorID": 7, "status": 0, "msg": "down"}, "monitor": {"id": 7, "name": "shop", "url": "u"}}


def source_of(kind: str) -> WebhookSource:
    entry = SOURCES[kind][0]
    source = build_sources([entry], FakeClock())[str(entry["name"])]
    assert isinstance(source, WebhookSource)
    return source


def shaped(kind: str) -> st.SearchStrategy[Any]:
    name = SOURCES[kind][1]
    return mutated(sample(name) if name else KUMA)


def credentials(kind: str, body: bytes) -> dict[str, str]:
    if kind == "grafana":
        return {"X-Grafana-Alerting-Signature": hmac_hex(GRAFANA_SECRET, body)}
    return {"Authorization": f"Bearer {SOURCES[kind][0]['token']}"}


def bodies(kind: str) -> st.SearchStrategy[bytes]:
    """A JSON document of the sender's shape with any value changed, any JSON, or any bytes."""
    documents = st.one_of(shaped(kind), json_values())
    return documents.map(lambda doc: json.dumps(doc).encode()) | st.binary(max_size=200)


def parses_or_refuses(source: WebhookSource, body: bytes, headers: dict[str, str]) -> None:
    try:
        events = source.parse(Headers(headers), body, START)
    except EventError:
        return
    assert all(event.source == source.name and event.level and event.title for event in events)


@pytest.mark.parametrize("kind", sorted(SOURCES))
def test_every_parser_answers_any_body_with_events_or_an_event_error(kind: str) -> None:
    source = source_of(kind)

    @budget(150)
    @given(body=bodies(kind))
    def check(body: bytes) -> None:
        TRIED[f"hooks: {kind} parser"] += 1
        source.authenticate(Headers(credentials(kind, body)), body)
        parses_or_refuses(source, body, credentials(kind, body))

    check()


@budget(200)
@given(text=TEXT, data=json_values())
def test_a_template_parses_or_says_why_and_renders_any_document(text: str, data: Any) -> None:
    TRIED["hooks: templates and values"] += 1
    try:
        template = Template.parse(text)
    except ValueError:
        return
    assert isinstance(template.render(data), str)
    assert isinstance(Value.of(text, {"x": None}).resolve(data), (str, type(None)))


# ---- through the daemon ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def shared_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    entries = "".join(f"  - {json.dumps(entry)}\n" for entry, _ in SOURCES.values())
    with daemon_in_thread(Path(tmp_path_factory.mktemp("fuzz-hooks")),
                          f"lamps: {{desk: virtual://desk}}\nsources:\n{entries}") as running:
        yield running


@pytest.mark.parametrize("kind", sorted(SOURCES))
def test_no_body_gives_a_5xx_and_every_accepted_event_is_stored(daemon: Daemon, kind: str) -> None:
    accepted: list[int] = []
    name = SOURCES[kind][0]["name"]
    with daemon.client() as client:

        @budget(40)
        @given(body=bodies(kind))
        def check(body: bytes) -> None:
            TRIED[f"hooks: POST /hooks/NAME ({kind})"] += 1
            answer = client.post(f"/hooks/{name}", content=body, headers=credentials(kind, body))
            assert answer.status_code in (202, 400, 401, 413, 422), answer.text
            if answer.status_code == 202:
                accepted.extend(receipt["id"] for receipt in answer.json()["events"])

        check()
        stored = {event["id"] for event in client.get("/api/events", params={"limit": 5000}, headers=AUTH).json()}
    assert set(accepted) <= stored
    assert not daemon.tracebacks


# ---- the inputs of issue 12 items 4 and 6 --------------------------------------------------------

@pytest.mark.parametrize("kind", ["alertmanager", "generic"])
def test_deeply_nested_json_is_refused_with_a_4xx(daemon: Daemon, kind: str) -> None:
    body = b"[" * 100_000 + b"]" * 100_000
    with daemon.client() as client:
        answer = client.post(f"/hooks/{SOURCES[kind][0]['name']}", content=body, headers=credentials(kind, body))
    assert 400 <= answer.status_code < 500


def test_a_lone_surrogate_in_an_alert_is_stored(daemon: Daemon) -> None:
    payload = sample("alertmanager.json")
    payload["alerts"] = payload["alerts"][:1]
    payload["alerts"][0]["annotations"]["summary"] = "truncated emoji \ud83d"
    payload["alerts"][0]["fingerprint"] = "surrogate-1"
    body = json.dumps(payload).encode()
    with daemon.client() as client:
        answer = client.post("/hooks/am", content=body, headers=credentials("alertmanager", body))
        after = client.post("/api/events", json={"level": "912", "title": "next"}, headers=AUTH)
    assert answer.status_code == 202 and after.status_code == 202
