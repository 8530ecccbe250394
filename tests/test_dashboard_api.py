"""The dashboard's HTTP side through a real uvicorn server: login, CSRF, timeline, chart, setup, live stream.

What the browser does with these answers is tested in test_dashboard_browser.py; here are the
rules a person cannot see on screen: which requests the login cookie may make, what the data
says under a fake clock, and that no secret leaves the daemon.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from lamplighter.service import Service
from lamplighter.web.dashboard import COOKIE, hide_secrets
from tests.conftest import FakeClock
from tests.serving import serving

TOKEN = "dashboard-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
LAMPS = "lamps: {desk: virtual://desk, log: 'console://admin:hunter2@log?token=s3cr3t&room=den'}\n"


@dataclass
class Served:
    client: httpx.AsyncClient  # no credentials of its own
    service: Service

    async def post_event(self, **body: Any) -> dict[str, Any]:
        answer = await self.client.post("/api/events", json=body, headers=AUTH)
        assert answer.status_code == 202, answer.text
        return dict(answer.json())

    async def get(self, path: str, **params: Any) -> Any:
        answer = await self.client.get(path, params=params, headers=AUTH)
        assert answer.status_code == 200, answer.text
        return answer.json()

    async def sign_in(self) -> str:
        """Sign in as a browser would; returns the CSRF token from the dashboard page."""
        answer = await self.client.post("/login", content=f"token={TOKEN}&next=/dashboard",
                                        headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert answer.status_code == 303 and answer.headers["location"] == "/dashboard"
        page = await self.client.get("/dashboard")
        found = re.search(r'<meta name="csrf-token" content="([0-9a-f]+)">', page.text)
        assert page.status_code == 200 and found is not None
        return found.group(1)


@pytest.fixture
async def served(service_factory: Callable[..., Service]) -> AsyncIterator[Callable[..., Any]]:
    """Start the app on loopback for a service built from YAML; everything stops at the end."""
    async with contextlib.AsyncExitStack() as stack:

        async def start(yaml_text: str = LAMPS) -> Served:
            service = service_factory(yaml_text)
            url = await stack.enter_async_context(serving(service, TOKEN))
            client = await stack.enter_async_context(httpx.AsyncClient(base_url=url, timeout=5))
            return Served(client, service)

        yield start


async def test_pages_send_a_stranger_to_the_login_which_refuses_a_wrong_token(served: Callable[..., Any]) -> None:
    s = await served()
    for path in ("/dashboard", "/dashboard/timeline", "/dashboard/try", "/dashboard/setup"):
        answer = await s.client.get(path)
        assert answer.status_code == 303 and answer.headers["location"] == f"/login?next={path}"
    wrong = await s.client.post("/login", content="token=nope&next=/dashboard/setup")
    assert wrong.status_code == 401 and "not the token" in wrong.text and "set-cookie" not in wrong.headers
    assert 'name="next" value="/dashboard/setup"' in wrong.text
    elsewhere = await s.client.post("/login", content=f"token={TOKEN}&next=https://evil.example/")
    assert elsewhere.status_code == 303 and elsewhere.headers["location"] == "/dashboard"
    cookie = elsewhere.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}={TOKEN};") and "HttpOnly" in cookie and "SameSite=strict" in cookie


async def test_a_token_link_signs_in_and_leaves_the_address_bar(served: Callable[..., Any]) -> None:
    s = await served()
    assert (await s.client.get("/dashboard/timeline", params={"token": "nope"})).status_code == 401
    link = await s.client.get("/dashboard/timeline", params={"token": TOKEN})
    assert link.status_code == 303 and link.headers["location"] == "/dashboard/timeline"
    page = await s.client.get("/dashboard/timeline")
    assert page.status_code == 200 and 'data-view="timeline"' in page.text
    assert TOKEN not in page.text
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]


async def test_the_cookie_changes_things_only_with_the_pages_csrf_token_from_the_same_origin(
        served: Callable[..., Any]) -> None:
    s = await served()
    event_id = (await s.post_event(level="911", title="payments down"))["id"]
    csrf = await s.sign_in()
    ack = f"/api/events/{event_id}/ack"
    refused = [
        await s.client.post(ack, json={"by": "mallory"}),
        await s.client.post(ack, json={"by": "mallory"}, headers={"X-CSRF-Token": "0" * 64}),
        await s.client.post(ack, json={"by": "mallory"}, headers={"X-CSRF-Token": csrf,
                                                                 "Origin": "http://evil.example"}),
    ]
    assert [r.status_code for r in refused] == [401, 401, 401]
    assert "X-CSRF-Token" in refused[0].json()["error"]
    assert event_id in s.service.signals
    origin = str(s.client.base_url).rstrip("/")
    done = await s.client.post(ack, json={"by": "dashboard"}, headers={"X-CSRF-Token": csrf, "Origin": origin})
    assert done.status_code == 200 and event_id not in s.service.signals
    logout = await s.client.post("/logout", headers={"X-CSRF-Token": csrf})
    assert logout.status_code == 204 and COOKIE not in s.client.cookies
    assert (await s.client.get("/api/timeline")).status_code == 401


async def test_static_files_are_public_and_only_the_dashboards_own(served: Callable[..., Any]) -> None:
    s = await served()
    script = await s.client.get("/static/main.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    assert (await s.client.get("/static/dashboard.css")).headers["content-type"].startswith("text/css")
    for name in ("dashboard.html", "nope.js", "..%2Fapp.py"):
        assert (await s.client.get(f"/static/{name}")).status_code == 404
    for path in ("/dashboard/live", "/api/timeline", "/api/timeline/hourly", "/api/config"):
        assert (await s.client.get(path)).status_code == 401


async def test_timeline_gives_outcomes_reasons_what_became_of_each_signal_and_filters(
        served: Callable[..., Any]) -> None:
    s = await served(LAMPS + 'levels: {"911": {hold: until_ack}, nowhere: {color: blue, priority: 1, lamps: []}}\n')
    shown = await s.post_event(level="911", title="db down", sender="alice")
    await s.post_event(level="911", title="db down", sender="alice")
    for title in ("a", "b", "c"):
        await s.post_event(level="912", title=title, sender="bob")
    await s.post_event(level="nowhere", title="lost", sender="carol")
    await s.client.post(f"/api/events/{shown['id']}/ack", json={"by": "alice"}, headers=AUTH)

    everything = await s.get("/api/timeline")
    assert [(e["level"], e["outcome"]) for e in everything["events"]] == [
        ("nowhere", "unrouted"), ("912", "throttled"), ("912", "shown"), ("912", "shown"),
        ("911", "deduplicated"), ("911", "shown")]
    by_id = {e["id"]: e for e in everything["events"]}
    assert by_id[shown["id"]]["ended"]["reason"] == "acknowledged by alice"
    assert by_id[shown["id"] + 1]["reasons"] == [f"same key as active event {shown['id']}; hold refreshed"]
    assert everything["events"][0]["reasons"] == ["level nowhere has no lamps"]
    assert everything["events"][1]["reasons"][0].startswith("sender bob is over the limit (2 at once, then one every")
    assert [e["active"] for e in everything["events"] if e["outcome"] == "shown"] == [True, True, False]
    assert everything["choices"]["sender"] == ["carol", "bob", "alice"]
    assert everything["choices"]["level"][:4] == ["911", "door", "912", "blind"]

    bob_shown = await s.get("/api/timeline", sender="bob", outcome="shown")
    assert [e["title"] for e in bob_shown["events"]] == ["b", "a"]
    assert [e["title"] for e in (await s.get("/api/timeline", level="911", limit=1))["events"]] == ["db down"]
    assert (await s.get("/api/timeline", source="mail"))["events"] == []


async def test_events_per_hour_counts_each_level_in_its_hour(served: Callable[..., Any], clock: FakeClock) -> None:
    s = await served()
    clock.advance(-2 * 3600 - clock.now() % 3600 + 60)  # one minute into an hour, two hours ago
    await s.post_event(level="911", title="first", sender="a")
    clock.advance(3600)
    await s.post_event(level="912", title="second", sender="b")
    await s.post_event(level="911", title="third", sender="c")
    clock.advance(2 * 3600 - 120)  # the last minute of the current hour
    chart = await s.get("/api/timeline/hourly", days=1)
    assert chart["hours"] == 24 and chart["start"] % 3600 == 0
    assert chart["start"] + 24 * 3600 > clock.now() >= chart["start"] + 23 * 3600
    assert chart["counts"]["911"][-4:] == [0, 1, 1, 0]
    assert chart["counts"]["912"][-4:] == [0, 0, 1, 0]
    assert sum(chart["counts"]["911"]) == 2


async def test_config_shows_the_running_setup_without_a_secret(served: Callable[..., Any]) -> None:
    s = await served(LAMPS + 'guards: {quiet_hours: {start: "22:00", end: "07:00", days: [sat, sun]}}\n')
    answer = await s.client.get("/api/config", headers=AUTH)
    config = answer.json()
    for secret in (TOKEN, "hunter2", "s3cr3t", "admin"):
        assert secret not in answer.text
    assert config["lamps"][1] == {"name": "log", "url": "console://****:****@log?token=****&room=den"}
    assert config["server"]["token"] == "****"
    assert config["levels"][0] == {"name": "911", "color": "#ff0000", "color_name": "red", "effect": "solid",
                                   "brightness": 100, "hold": "10s", "priority": 300, "lamps": ["desk", "log"],
                                   "quiet_hours_bypass": True, "sirens": [], "escalate_after": None}
    assert config["sirens"] == []
    assert config["guards"] == {"dedup_window": "2m", "per_sender": "2 at once, then 1 every 30s",
                                "per_source": "20 at once, then 1 every 3s",
                                "quiet_hours": ["22:00-07:00 on sat, sun (the machine's time zone)"]}


def test_source_settings_are_shown_with_secret_keys_hidden_and_urls_redacted() -> None:
    settings = {"type": "imap", "host": "mail.example", "password": 123456, "api_key": "k", "folder": "INBOX",
                "url": "https://user:pass@hooks.example/x?token=abc", "headers": {"X-Api-Key": "z"},
                "note": f"uses {TOKEN}", "senders": ["ops@example.com"], "hmac_secret": "", "port": 993,
                "rules": [{"key": "{topic}", "bot_token": "xoxb-1"}], "signature_header": "X-Sig",
                "verify_auth": True}
    assert hide_secrets(settings, TOKEN) == {
        "type": "imap", "host": "mail.example", "password": "****", "api_key": "****", "folder": "INBOX",
        "url": "https://****:****@hooks.example/x?token=****", "headers": {"X-Api-Key": "****"},
        "note": "****", "senders": ["ops@example.com"], "hmac_secret": "", "port": 993,
        "rules": [{"key": "{topic}", "bot_token": "****"}], "signature_header": "X-Sig", "verify_auth": True}


async def test_live_stream_sends_the_now_view_then_each_change_and_ends_with_the_service(
        served: Callable[..., Any]) -> None:
    s = await served(LAMPS + 'levels: {"911": {hold: until_ack}}\n')
    async with s.client.stream("GET", "/dashboard/live", headers=AUTH) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        lines = stream.aiter_lines()

        async def next_snapshot(until: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
            async for line in lines:
                if line.startswith("data: ") and until(snapshot := json.loads(line[6:])):
                    return snapshot
            raise AssertionError("the stream ended")

        first = await asyncio.wait_for(next_snapshot(lambda _: True), 2)
        assert first["signals"] == [] and first["snooze"] is None and first["activity"] == []
        event_id = (await s.post_event(level="911", title="payments down", sender="alice"))["id"]
        red = await asyncio.wait_for(next_snapshot(lambda v: v["lamps"][0]["showing"] is not None), 2)
        desk = red["lamps"][0]
        assert desk["state"] == {"on": True, "color": "#ff0000", "brightness": 100, "effect": "solid"}
        assert desk["color_name"] == "red" and desk["kind"] == "lamp"
        assert {k: desk["showing"][k] for k in ("event_id", "level", "title", "sender", "source", "expires_at")} == {
            "event_id": event_id, "level": "911", "title": "payments down", "sender": "alice", "source": "api",
            "expires_at": None}
        assert [signal["event_id"] for signal in red["signals"]] == [event_id]
        s.service.snooze_all(600, "carol")
        snoozed = await asyncio.wait_for(next_snapshot(lambda v: v["snooze"] is not None), 2)
        assert "snooze" in snoozed["activity"] and snoozed["snooze"]["by"] == "carol"
        s.service.end_watches()
        with pytest.raises(AssertionError, match="the stream ended"):
            await asyncio.wait_for(next_snapshot(lambda _: False), 2)


async def test_a_closed_page_leaves_no_listener_behind(served: Callable[..., Any]) -> None:
    s = await served()

    def listeners() -> list[asyncio.Task[Any]]:
        return [task for task in asyncio.all_tasks() if task.get_coro().__qualname__ == "Queue.get"]

    for _ in range(3):
        async with s.client.stream("GET", "/dashboard/live", headers=AUTH) as stream:
            async for line in stream.aiter_lines():
                if line.startswith("data: "):
                    break
    async with asyncio.timeout(2):
        while listeners():
            await asyncio.sleep(0.01)
