"""Hostile requests over HTTP (issue 12): each attack gets a clear 4xx, and the daemon goes on serving.

Covers: an empty presented token (1), out-of-range numbers (5), deeply nested JSON on every
JSON intake (6), a lone UTF-16 surrogate in an alert (4), the OpenAPI schema without a
token (12), and an infinite hold in the running configuration (11).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from lamplighter.service import Service
from tests.conftest import START
from tests.peers.fake_slack import SIGNING_SECRET, signed_headers
from tests.serving import serving
from tests.test_hooks_common import sample

TOKEN = "hostile-http-token-0123"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
HOOK_TOKEN = "hook-token"
HOOK_AUTH = {"Authorization": f"Bearer {HOOK_TOKEN}"}
CONFIG = (
    "lamps: {desk: virtual://desk}\n"
    "sources:\n"
    f"  - {{type: alertmanager, token: {HOOK_TOKEN}}}\n"
    f"  - {{type: webhook, name: kuma, token: {HOOK_TOKEN}, level: '911', title: '{{msg}}'}}\n"
    f"  - type: slack\n    signing_secret: {SIGNING_SECRET}\n    watch:\n"
    "      - {channel: C0OPS, match: down, level: '911'}\n"
)
DEEP = "[" * 50_000 + "]" * 50_000
TRUNCATED = "truncated emoji \ud83d"  # half of a surrogate pair: JSON can carry it, UTF-8 cannot


@pytest.fixture
async def api(service_factory: Callable[..., Service]) -> AsyncIterator[tuple[httpx.AsyncClient, Service]]:
    service = service_factory(CONFIG)
    async with serving(service, TOKEN) as url, httpx.AsyncClient(base_url=url, timeout=5) as client:
        yield client, service


async def still_serving(client: httpx.AsyncClient) -> None:
    """The next legitimate event is accepted and stored: nothing was left broken."""
    answer = await client.post("/api/events", json={"level": "912", "title": "still here"}, headers=AUTH)
    assert answer.status_code == 202, answer.text


# ---- 1: an empty token never passes -------------------------------------------------------------


@pytest.mark.parametrize("headers", [{"Authorization": "Bearer"}, {"Cookie": "lamplighter_token="}])
async def test_an_empty_presented_token_is_refused(api: tuple[httpx.AsyncClient, Service],
                                                   headers: dict[str, str]) -> None:
    client, service = api
    assert (await client.post("/api/events", json={"level": "911", "title": "x"}, headers=headers)).status_code == 401
    assert (await client.get("/api/config", headers=headers)).status_code == 401
    assert service.store.count_events() == 0


async def test_an_empty_token_in_the_lamp_link_does_not_log_in(api: tuple[httpx.AsyncClient, Service]) -> None:
    client, _ = api
    answer = await client.get("/lamp/desk?token=", follow_redirects=False)
    assert answer.status_code == 401 and "set-cookie" not in answer.headers


async def test_an_app_given_an_empty_token_lets_nobody_in(service_factory: Callable[..., Service]) -> None:
    async with serving(service_factory(""), "") as url, httpx.AsyncClient(base_url=url, timeout=5) as client:
        for headers in ({"Authorization": "Bearer"}, {"Authorization": "bearer"}, {}):
            assert (await client.get("/api/events", headers=headers)).status_code == 401
        assert (await client.get("/lamp/desk?token=", follow_redirects=False)).status_code == 401


# ---- 12: the schema needs the token --------------------------------------------------------------


async def test_the_openapi_schema_needs_the_token(api: tuple[httpx.AsyncClient, Service]) -> None:
    client, _ = api
    assert (await client.get("/api/openapi.json")).status_code == 401
    for page in ("/docs", "/redoc"):
        assert (await client.get(page)).status_code in (401, 404)
    schema = await client.get("/api/openapi.json", headers=AUTH)
    assert schema.status_code == 200 and "/api/events" in schema.json()["paths"]


# ---- 5: numbers out of range ----------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/events/99999999999999999999999/ack",
                                  "/api/events/99999999999999999999999/snooze"])
async def test_an_event_id_too_large_for_the_journal_is_a_4xx_naming_it(
        api: tuple[httpx.AsyncClient, Service], path: str) -> None:
    client, _ = api
    answer = await client.post(path, json={"for": "10m"}, headers=AUTH)
    assert answer.status_code == 422 and answer.json()["error"].startswith("event_id:")
    await still_serving(client)


@pytest.mark.parametrize("path", ["/api/snooze", "/api/events/1/snooze", "/api/lamps/desk/test"])
@pytest.mark.parametrize("duration", ["9" * 400, "1" + "0" * 400 + "s", 1e308 * 10])
async def test_an_absurd_duration_is_a_422_naming_the_field(api: tuple[httpx.AsyncClient, Service], path: str,
                                                            duration: Any) -> None:
    client, _ = api
    await still_serving(client)  # event 1 exists and shows, so only `for` can be wrong
    body = '{"for": %s}' % (duration if isinstance(duration, str) and duration.isdigit() else json.dumps(duration))
    answer = await client.post(path, content=body, headers=AUTH)
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"].startswith("for:")
    assert len(answer.text) < 1000  # the number is not echoed in full


# ---- 6: deeply nested JSON ------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "headers"), [
    ("/api/events", AUTH),
    ("/hooks/alertmanager", HOOK_AUTH),
    ("/hooks/kuma", HOOK_AUTH),
])
async def test_deeply_nested_json_is_a_400_naming_the_problem(api: tuple[httpx.AsyncClient, Service], path: str,
                                                             headers: dict[str, str]) -> None:
    client, service = api
    answer = await client.post(path, content=DEEP, headers={**headers, "Content-Type": "application/json"})
    assert answer.status_code == 400, answer.text
    assert "nested deeper than" in answer.json()["error"]
    assert service.store.count_events() == 0
    await still_serving(client)


async def test_deeply_nested_json_from_slack_is_a_400(api: tuple[httpx.AsyncClient, Service]) -> None:
    client, _ = api
    body = DEEP.encode()
    headers = signed_headers(body, START, content_type="application/json")
    answer = await client.post("/hooks/slack", content=body, headers=headers)
    assert answer.status_code == 400 and "nested deeper than" in answer.json()["error"]
    await still_serving(client)


async def test_a_body_with_brackets_inside_strings_is_not_mistaken_for_nesting(
        api: tuple[httpx.AsyncClient, Service]) -> None:
    client, _ = api
    answer = await client.post("/api/events", json={"level": "912", "title": "[" * 400 + '"{'}, headers=AUTH)
    assert answer.status_code == 202, answer.text


# ---- 4: a lone surrogate is stored, and the journal stays usable ----------------------------------


def _alertmanager_with_summary(summary: str) -> bytes:
    payload = sample("alertmanager.json")
    payload["alerts"][0]["annotations"]["summary"] = summary
    return json.dumps(payload).encode()  # ensure_ascii: the surrogate travels as \ud83d, as senders send it


async def test_a_lone_surrogate_on_every_json_intake_is_stored_as_a_replacement_character(
        api: tuple[httpx.AsyncClient, Service]) -> None:
    client, service = api
    slack = json.dumps({"type": "event_callback", "team_id": "T0001", "event_id": "Ev01",
                        "event": {"type": "message", "channel": "C0OPS", "user": "U0ANA",
                                  "text": f"site down: {TRUNCATED}", "ts": "1800000000.000100"}}).encode()
    answers = [
        await client.post("/hooks/alertmanager", content=_alertmanager_with_summary(TRUNCATED), headers=HOOK_AUTH),
        await client.post("/hooks/kuma", content=json.dumps({"msg": TRUNCATED}), headers=HOOK_AUTH),
        await client.post("/api/events", content=json.dumps({"level": "912", "title": TRUNCATED,
                                                               "key": "api"}), headers=AUTH),
        await client.post("/hooks/slack", content=slack,
                          headers=signed_headers(slack, START, content_type="application/json")),
    ]
    assert [a.status_code for a in answers] == [202, 202, 202, 200], [a.text for a in answers]
    stored = [e.title + e.body for e in service.store.recent_events(10)]
    assert len(stored) == 4
    assert all("truncated emoji \ufffd" in text for text in stored), stored
    await still_serving(client)
