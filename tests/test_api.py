"""The HTTP API through a real uvicorn server on loopback: auth, validation, outcomes, lamps, SSE."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from lamplighter.service import Service
from tests.serving import serving

TOKEN = "api-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
async def api(service_factory: Callable[..., Service]) -> AsyncIterator[tuple[httpx.AsyncClient, Service]]:
    service = service_factory("lamps: {desk: virtual://desk, hall: 'virtual://hall?on=true&color=white'}\n")
    async with serving(service, TOKEN) as url, httpx.AsyncClient(base_url=url, timeout=5) as client:
        yield client, service


async def post(client: httpx.AsyncClient, body: Any, **kwargs: Any) -> httpx.Response:
    return await client.post("/api/events", json=body, headers=AUTH, **kwargs)


async def test_healthz_needs_no_token(api: tuple[httpx.AsyncClient, Service]) -> None:
    client, _ = api
    response = await client.get("/healthz")
    assert response.status_code == 200 and response.json()["status"] == "ok"


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/api/events"), ("POST", "/api/events"), ("GET", "/api/lamps"), ("POST", "/api/events/1/ack"),
    ("GET", "/metrics"), ("GET", "/lamp/desk"), ("GET", "/lamp/desk/events"),
    ("GET", "/lamp/no-such-lamp"),  # no 404 before the token: lamp names are not given away
])
@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}])
async def test_every_route_but_healthz_needs_the_token(api: tuple[httpx.AsyncClient, Service], method: str,
                                                       path: str, headers: dict[str, str]) -> None:
    client, service = api
    response = await client.request(method, path, headers=headers, json={"level": "911", "title": "x"})
    assert response.status_code == 401
    assert "token" in response.json()["error"]
    assert service.store.count_events() == 0


@pytest.mark.parametrize(("body", "status", "needle"), [
    (b'{"level": "911", "title": ', 400, "not valid JSON"),
    (b"[]", 422, "body: Input should be an object"),
    (b'{"level": "911"}', 422, "title: Field required"),
    (b'{"title": "x"}', 422, "level: Field required"),
    (b'{"level": "911", "title": ""}', 422, "title: String should have at least 1 character"),
    (b'{"level": "9111", "title": "x"}', 422, "level: unknown level '9111' (known: 911, door, 912, blind)"),
    (b'{"level": "911", "title": "x", "status": "over"}', 422, "status: Input should be 'firing' or 'resolved'"),
    (b'{"level": "911", "title": "x", "labels": {"a": 1}}', 422, "labels.a: Input should be a valid string"),
    (b'{"level": "911", "title": "x", "colour": "red"}', 422, "colour: Extra inputs are not permitted"),
])
async def test_bad_input_names_the_problem_and_writes_nothing(api: tuple[httpx.AsyncClient, Service], body: bytes,
                                                              status: int, needle: str) -> None:
    client, service = api
    response = await client.post("/api/events", content=body, headers=AUTH)
    assert response.status_code == status
    assert needle in response.json()["error"]
    assert service.store.count_events() == 0 and service.signals == {}


async def test_oversized_bodies_get_413_declared_or_streamed(api: tuple[httpx.AsyncClient, Service]) -> None:
    client, service = api
    big = {"level": "911", "title": "x", "body": "a" * 1_100_000}
    assert (await post(client, big)).status_code == 413

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(1100):
            yield b" " * 1024  # no Content-Length: the limit is counted while reading

    response = await client.post("/api/events", content=chunks(), headers=AUTH)
    assert response.status_code == 413 and "larger than 1048576 bytes" in response.json()["error"]
    assert service.store.count_events() == 0


async def test_a_posted_event_is_stored_shown_and_listed(api: tuple[httpx.AsyncClient, Service]) -> None:
    client, service = api
    response = await post(client, {"level": "911", "title": "payments down", "sender": "alice",
                                   "labels": {"service": "payments"}})
    assert response.status_code == 202
    answer = response.json()
    assert answer["outcome"] == "shown" and answer["signal_id"] == answer["id"]
    stored = service.store.event(answer["id"])
    assert stored is not None and stored.title == "payments down" and stored.labels == {"service": "payments"}
    dup = (await post(client, {"level": "911", "title": "payments down"})).json()
    assert dup["outcome"] == "deduplicated" and dup["reasons"] == [
        f"same key as active event {answer['id']}; hold refreshed"]

    events = (await client.get("/api/events", params={"limit": 1}, headers=AUTH)).json()
    assert [e["id"] for e in events] == [dup["id"]]
    events = (await client.get("/api/events", headers=AUTH)).json()
    assert [(e["outcome"], e["sender"]) for e in events] == [("deduplicated", ""), ("shown", "alice")]


async def test_throttled_sender_is_told_when_to_retry(api: tuple[httpx.AsyncClient, Service]) -> None:
    client, _ = api
    answers = [(await post(client, {"level": "912", "title": f"hello {i}", "sender": "ta"})).json() for i in range(3)]
    assert [a["outcome"] for a in answers] == ["shown", "shown", "throttled"]
    assert answers[2]["retry_after"] > 0 and "sender ta is over" in answers[2]["reasons"][0]


async def test_lamps_show_state_and_the_event_behind_it(api: tuple[httpx.AsyncClient, Service]) -> None:
    client, _ = api
    event_id = (await post(client, {"level": "911", "title": "payments down"})).json()["id"]

    async def desk() -> dict[str, Any]:
        lamps = {lamp["name"]: lamp for lamp in (await client.get("/api/lamps", headers=AUTH)).json()}
        return lamps["desk"]

    for _ in range(100):
        if (await desk())["state"]["color"] == "#ff0000":
            break
        await asyncio.sleep(0.01)
    lamp = await desk()
    assert lamp == {"name": "desk", "kind": "lamp", "driver": "virtual", "url": "virtual://desk", "online": True,
                    "reached": True, "error": None,
                    "state": {"on": True, "color": "#ff0000", "brightness": 100, "effect": "solid"},
                    "showing": {**lamp["showing"], "event_id": event_id, "level": "911", "title": "payments down"}}
    assert lamp["showing"]["expires_at"] - lamp["showing"]["started_at"] == 10


async def test_ack_answers_200_404_and_409(api: tuple[httpx.AsyncClient, Service]) -> None:
    client, service = api
    event_id = (await post(client, {"level": "911", "title": "x"})).json()["id"]
    response = await client.post(f"/api/events/{event_id}/ack", headers=AUTH, json={"by": "alice"})
    assert response.status_code == 200 and response.json() == {"id": event_id, "acknowledged": True, "by": "alice"}
    assert service.signals == {}
    again = await client.post(f"/api/events/{event_id}/ack", headers=AUTH)
    assert again.status_code == 409 and "not showing" in again.json()["error"]
    missing = await client.post("/api/events/12345/ack", headers=AUTH)
    assert missing.status_code == 404 and "12345" in missing.json()["error"]


async def test_metrics_count_events_by_level_and_outcome(api: tuple[httpx.AsyncClient, Service]) -> None:
    client, _ = api
    await post(client, {"level": "911", "title": "x"})
    await post(client, {"level": "911", "title": "x"})
    text = (await client.get("/metrics", headers=AUTH)).text
    assert 'lamplighter_events_total{level="911",outcome="shown"} 1.0' in text
    assert 'lamplighter_events_total{level="911",outcome="deduplicated"} 1.0' in text
    assert "lamplighter_event_to_apply_seconds_bucket" in text


async def test_a_store_failure_answers_503_and_accepts_nothing(api: tuple[httpx.AsyncClient, Service]) -> None:
    client, service = api
    service.store.close()
    response = await post(client, {"level": "911", "title": "x"})
    assert response.status_code == 503 and "not accepted" in response.json()["error"]
    assert service.signals == {}


async def test_lamp_page_login_sets_a_cookie_that_only_reads(api: tuple[httpx.AsyncClient, Service]) -> None:
    client, service = api
    assert (await client.get("/lamp/desk", params={"token": "wrong"})).status_code == 401
    login = await client.get("/lamp/desk", params={"token": TOKEN})
    assert login.status_code == 303 and login.headers["location"] == "/lamp/desk"
    cookie = login.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    page = await client.get("/lamp/desk")  # the client keeps the cookie
    assert page.status_code == 200 and 'const NAME = "desk";' in page.text
    assert (await client.get("/lamp/nope")).status_code == 404
    refused = await client.post("/api/events", json={"level": "911", "title": "csrf"})
    assert refused.status_code == 401 and service.store.count_events() == 0


async def test_lamp_stream_sends_the_state_then_each_change(api: tuple[httpx.AsyncClient, Service]) -> None:
    client, _ = api
    async with client.stream("GET", "/lamp/desk/events", headers=AUTH) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        lines = stream.aiter_lines()

        async def next_view() -> dict[str, Any]:
            async for line in lines:
                if line.startswith("data: "):
                    return json.loads(line[6:])
            raise AssertionError("stream ended")

        first = await asyncio.wait_for(next_view(), 2)
        if first["state"] is None:  # the lamp was not read yet when we connected
            first = await asyncio.wait_for(next_view(), 2)
        assert first["state"]["on"] is False
        await post(client, {"level": "912", "title": "disk filling"})
        view = await asyncio.wait_for(next_view(), 2)
        assert view["state"]["color"] == "#ffd000" and view["showing"]["title"] == "disk filling"


async def test_snooze_endpoints(api: tuple[httpx.AsyncClient, Service]) -> None:
    client, service = api
    event_id = (await post(client, {"level": "912", "title": "disk"})).json()["id"]
    bad = await client.post(f"/api/events/{event_id}/snooze", headers=AUTH, json={"for": "forever"})
    assert bad.status_code == 422 and bad.json()["error"].startswith("for: ")
    too_long = await client.post(f"/api/events/{event_id}/snooze", headers=AUTH, json={"for": "8d"})
    assert too_long.status_code == 422 and too_long.json()["error"].endswith("must be at most 7d")
    snoozed = await client.post(f"/api/events/{event_id}/snooze", headers=AUTH, json={"for": "30m"})
    assert snoozed.status_code == 200
    assert snoozed.json()["snoozed_until"] == service.clock.now() + 1800
    assert (await client.get("/api/snooze", headers=AUTH)).json() == {"snoozed_until": None, "by": None}
    on = await client.post("/api/snooze", headers=AUTH, json={"for": "1h", "by": "alice"})
    assert on.json() == {"snoozed_until": service.clock.now() + 3600, "by": "alice"}
    assert (await post(client, {"level": "door", "title": "x"})).json()["outcome"] == "quiet"
    assert (await client.delete("/api/snooze", headers=AUTH)).json() == {"snoozed_until": None, "by": None}
    assert (await post(client, {"level": "door", "title": "y"})).json()["outcome"] == "shown"


async def test_the_root_leads_to_the_dashboard(api: tuple[httpx.AsyncClient, Service]) -> None:
    client, _ = api
    response = await client.get("/")
    assert response.status_code == 303 and response.headers["location"] == "/dashboard"


async def test_an_event_can_be_sent_to_one_lamp(api: tuple[httpx.AsyncClient, Service]) -> None:
    client, service = api
    refused = await post(client, {"level": "911", "title": "x", "lamps": ["attic"]})
    assert refused.status_code == 422 and refused.json()["error"].startswith("lamps: no lamp named 'attic'")
    shown = (await post(client, {"level": "911", "title": "test", "lamps": ["hall"]})).json()
    assert service.signals[shown["id"]].lamps == {"hall"}
