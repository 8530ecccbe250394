"""Issue 12 (hostile input), items 7, 8, 9, 15, 16 and 17: each attack replayed through the interface it used."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from lamplighter.drivers.registry import build_driver
from lamplighter.errors import DriverError, StoreError
from lamplighter.model import Outcome, make_event
from lamplighter.service import Service
from lamplighter.service.intake import SLICE
from lamplighter.sources.replay import ReplayMemory
from tests.conftest import FakeClock
from tests.peers.fake_slack import SIGNING_SECRET, form_body, signed_headers
from tests.serving import serving
from tests.test_hooks_common import hmac_hex, hook_client

API_TOKEN = "hostile-api-token-0123456789"
AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
AM_TOKEN = "am-token-0123456789"


def alertmanager_batch(count: int) -> bytes:
    alerts = [{"status": "firing", "labels": {"severity": "critical", "alertname": f"A{i}"}, "fingerprint": f"f{i}"}
              for i in range(count)]
    return json.dumps({"version": "4", "status": "firing", "alerts": alerts}).encode()


# ---- item 7: a big batch is one transaction and leaves the loop responsive -------------------------

async def _poll_healthz(client: httpx.AsyncClient, until: asyncio.Event) -> float:
    """The longest /healthz took while `until` is not set."""
    longest = 0.0
    while not until.is_set():
        started = time.monotonic()
        assert (await client.get("/healthz")).status_code == 200
        longest = max(longest, time.monotonic() - started)
        await asyncio.sleep(0.02)
    return longest


async def test_an_alertmanager_batch_of_11000_alerts_is_stored_in_slices_and_keeps_healthz_answering(
        service_factory: Callable[..., Service]) -> None:
    service = service_factory(f"server: {{max_body_bytes: 2000000}}\nlamps: {{desk: virtual://desk}}\n"
                              f"sources:\n  - {{type: alertmanager, token: {AM_TOKEN}}}\n")
    inserts_per_commit, inserts = [], 0

    def trace(sql: str) -> None:
        nonlocal inserts
        inserts += sql.startswith("INSERT INTO events")
        if sql == "COMMIT" and inserts:
            inserts_per_commit.append(inserts)
            inserts = 0

    service.store._db.set_trace_callback(trace)
    body = alertmanager_batch(11_000)
    async with serving(service, API_TOKEN) as url, httpx.AsyncClient(base_url=url, timeout=30) as client:
        done = asyncio.Event()
        poller = asyncio.create_task(_poll_healthz(client, done))
        await asyncio.sleep(0.05)
        answer = await client.post("/hooks/alertmanager", content=body,
                                   headers={"Authorization": f"Bearer {AM_TOKEN}", "Content-Type": "application/json"})
        done.set()
        longest = await poller
        stored = service.store.count_events()
    assert answer.status_code == 202 and len(answer.json()["events"]) == 11_000
    assert stored == 11_000
    assert sum(inserts_per_commit) == 11_000 and max(inserts_per_commit) <= SLICE  # slices: the loop is never held long
    assert longest < 2.5  # 3.3 s with one fsync per alert; ~0.15 s now (parsed in a thread, then routed)



async def test_a_batch_that_cannot_be_stored_changes_nothing(running: Callable[..., Any],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    service = await running("lamps: {desk: virtual://desk}\n")
    events = [make_event("912", f"disk {i}", received_at=service.clock.now(), key=f"k{i}", sender=f"s{i}")
              for i in range(3)]
    insert, calls = service.store._insert_event, []

    def third_fails(*args: Any) -> int:
        calls.append(args)
        if len(calls) == 3:
            raise sqlite3.OperationalError("disk I/O error")
        return insert(*args)

    monkeypatch.setattr(service.store, "_insert_event", third_fails)
    with pytest.raises(StoreError):
        service.submit_many(events)
    monkeypatch.undo()
    assert service.store.count_events() == 0 and service.signals == {} and service.router.last_seen == {}
    assert [r.outcome for r in service.submit_many(events)] == [Outcome.SHOWN] * 3

# ---- item 8: header and body deadlines, a connection cap -------------------------------------------

FAST_LIMITS = "server: {header_timeout: 0.5s, body_timeout: 0.5s, max_connections: 100}\nlamps: {desk: virtual://desk}\n"


@contextlib.contextmanager
def uvicorn_log(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """uvicorn's own loggers do not propagate: let caplog see what uvicorn logs (its tracebacks).
    Enter it once the server runs: uvicorn's logging setup replaces the handlers."""
    logger = logging.getLogger("uvicorn.error")
    logger.addHandler(caplog.handler)
    try:
        yield
    finally:
        logger.removeHandler(caplog.handler)


async def _closed_within(reader: asyncio.StreamReader, seconds: float) -> bytes:
    """What the server sent before closing the connection; fails if it is still open after `seconds`."""
    async with asyncio.timeout(seconds):
        return await reader.read()


async def test_a_partial_request_line_is_cut_off_at_the_header_timeout(
        service_factory: Callable[..., Service], caplog: pytest.LogCaptureFixture) -> None:
    async with serving(service_factory(FAST_LIMITS), API_TOKEN) as url:
        host, port = url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(b"GET /hea")
        started = time.monotonic()
        assert await _closed_within(reader, 3.0) == b""
        writer.close()
    assert 0.4 <= time.monotonic() - started < 3.0
    assert [r.message for r in caplog.records if "header" in r.message] == [
        "closing HTTP connections that do not send a request's headers within 0.5 s (a slow or hostile client)"]


async def test_a_lamp_page_stream_outlives_the_deadlines(service_factory: Callable[..., Service]) -> None:
    """The deadlines are for sending a request, not for a long answer: the lamp page's stream stays open."""
    async with serving(service_factory(FAST_LIMITS), API_TOKEN) as url:
        host, port = url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(b"GET /lamp/desk/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + API_TOKEN.encode()
                     + b"\r\n\r\n")
        async with asyncio.timeout(3):
            first = await reader.readuntil(b"data: ")
        await asyncio.sleep(1.5)  # three header timeouts
        await reader.read(65536)  # what was sent so far
        try:
            async with asyncio.timeout(0.3):
                still_open = await reader.read(1) != b""  # b"": closed
        except TimeoutError:
            still_open = True  # nothing more to read, and not closed
        writer.close()
    assert first.startswith(b"HTTP/1.1 200") and still_open

async def test_a_body_that_stops_coming_is_cut_off_without_a_traceback(
        service_factory: Callable[..., Service], caplog: pytest.LogCaptureFixture) -> None:
    """Item 8's body deadline, and item 15's client gone mid-body: no traceback, nothing stored."""
    service = service_factory(FAST_LIMITS)
    async with serving(service, API_TOKEN) as url:
        with uvicorn_log(caplog):  # after uvicorn has configured its logging
            host, port = url.removeprefix("http://").split(":")
            for stop_how in ("stall", "disconnect"):
                reader, writer = await asyncio.open_connection(host, int(port))
                writer.write(b"POST /api/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + API_TOKEN.encode()
                             + b"\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"level\": ")
                await writer.drain()
                if stop_how == "disconnect":
                    await asyncio.sleep(0.1)
                    writer.close()
                    await asyncio.sleep(0.3)
                else:
                    assert await _closed_within(reader, 3.0) == b""
                    writer.close()
            stored = service.store.count_events()
    assert stored == 0
    assert not [r for r in caplog.records if r.exc_info or "Traceback" in r.getMessage()]


async def test_300_idle_connections_do_not_starve_a_legitimate_request(
        service_factory: Callable[..., Service], caplog: pytest.LogCaptureFixture) -> None:
    service = service_factory(FAST_LIMITS.replace("header_timeout: 0.5s", "header_timeout: 60s"))
    async with serving(service, API_TOKEN) as url:
        host, port = url.removeprefix("http://").split(":")
        idle = []
        for _ in range(300):
            reader, writer = await asyncio.open_connection(host, int(port))
            writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n")  # never finished
            idle.append((reader, writer))
        await asyncio.sleep(0.2)
        async with httpx.AsyncClient(base_url=url, timeout=5) as client:
            answer = await client.post("/api/events", json={"level": "911", "title": "still heard"}, headers=AUTH)
        open_now = sum(not reader.at_eof() for reader, _ in idle)
        for _, writer in idle:
            writer.close()
    assert answer.status_code == 202 and answer.json()["outcome"] == "shown"
    assert open_now <= 100
    assert len([r for r in caplog.records if "more than 100 HTTP connections" in r.message]) == 1


# ---- item 9: the lamp page cannot be framed -------------------------------------------------------

async def test_the_lamp_page_refuses_to_be_framed(service_factory: Callable[..., Service]) -> None:
    async with serving(service_factory("lamps: {desk: virtual://desk}\n"), API_TOKEN) as url, \
            httpx.AsyncClient(base_url=url, timeout=5) as client:
        page = await client.get("/lamp/desk", headers=AUTH)
        dashboard = await client.get("/dashboard", headers=AUTH)
    assert page.status_code == 200 and page.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in dashboard.headers["content-security-policy"]


# ---- item 17: hook names cannot be enumerated -----------------------------------------------------

async def test_an_unknown_hook_name_is_answered_like_a_wrong_token(service_factory: Callable[..., Service]) -> None:
    service = service_factory(f"sources:\n  - {{type: alertmanager, name: prod-am, token: {AM_TOKEN}}}\n")
    async with serving(service, API_TOKEN) as url, httpx.AsyncClient(base_url=url, timeout=5) as client:
        answers = {(name, str(headers)): await client.post(f"/hooks/{name}", content=b"{}", headers=headers)
                   for name in ("prod-am", "staging-am") for headers in ({}, {"Authorization": "Bearer guess"})}
    for headers in ({}, {"Authorization": "Bearer guess"}):
        real, unknown = answers[("prod-am", str(headers))], answers[("staging-am", str(headers))]
        assert real.status_code == unknown.status_code == 401
        assert real.json() == unknown.json()
        assert real.headers["content-length"] == unknown.headers["content-length"]


# ---- item 15: a device that answers too much ------------------------------------------------------

@contextlib.asynccontextmanager
async def device_answering(body: bytes) -> AsyncIterator[str]:
    """A loopback 'device' that answers every request 200 with `body` as JSON; yields its address."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                         b"Content-Length: %d\r\n\r\n" % len(body))
            for start in range(0, len(body), 1 << 16):
                writer.write(body[start:start + (1 << 16)])
                await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    try:
        yield f"127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()


@pytest.mark.parametrize(("body", "message"), [
    (b"[" * 30_000_000, "answered more than 1024 KiB"),
    (b"[" * 200_000, "answered with JSON nested too deeply"),
])
async def test_a_device_answer_that_is_too_big_or_too_deep_is_a_driver_error(body: bytes, message: str) -> None:
    async with device_answering(body) as address:
        driver = build_driver(f"wled://{address}")
        started = time.monotonic()
        with pytest.raises(DriverError, match=message):
            async with asyncio.timeout(10):
                await driver.read_state()
        await driver.close()
    assert time.monotonic() - started < 5  # the 30 MB were not read


# ---- item 16: replays are refused across a restart; signed hooks without a timestamp too ----------

async def test_a_signed_slack_911_replayed_after_a_restart_is_refused(
        service_factory: Callable[..., Service], clock: FakeClock) -> None:
    config = f"lamps: {{desk: virtual://desk}}\nsources:\n  - {{type: slack, signing_secret: {SIGNING_SECRET}}}\n"
    body = form_body(command="/911", text="checkout is down")
    headers = signed_headers(body, clock.now())
    async with hook_client(service_factory(config)) as client:
        assert (await client.post("/hooks/slack", content=body, headers=headers)).status_code == 200
    clock.advance(10)
    async with hook_client(service_factory(config)) as client:  # a new daemon on the same state directory
        replayed = await client.post("/hooks/slack", content=body, headers=headers)
        fresh = await client.post("/hooks/slack", content=body, headers=signed_headers(body, clock.now()))
    assert replayed.status_code == 401 and replayed.json()["error"].startswith("replayed request")
    assert fresh.status_code == 200


@pytest.mark.parametrize(("source", "header", "prefix"), [
    ("{type: grafana, name: hook, secret: s3cret}", "X-Grafana-Alerting-Signature", ""),
    ("{type: webhook, name: hook, secret: s3cret, level: '911', title: '{title}', key: '{key}', "
     "status: '{status}'}", "X-Hub-Signature-256", "sha256="),
])
async def test_a_signed_firing_replayed_after_its_resolve_is_refused_within_the_replay_window(
        service_factory: Callable[..., Service], clock: FakeClock, source: str, header: str, prefix: str) -> None:
    config = f"lamps: {{desk: virtual://desk}}\nsources:\n  - {source}\n"
    firing, resolved = (grafana_or_github(status) for status in ("firing", "resolved"))

    def signed(body: bytes) -> dict[str, str]:
        return {header: prefix + hmac_hex("s3cret", body), "Content-Type": "application/json"}

    async with hook_client(service_factory(config)) as client:
        assert (await client.post("/hooks/hook", content=firing, headers=signed(firing))).status_code == 202
        clock.advance(60)
        assert (await client.post("/hooks/hook", content=resolved, headers=signed(resolved))).status_code == 202
    clock.advance(3600)
    service = service_factory(config)
    async with hook_client(service) as client:  # after a restart, too
        replayed = await client.post("/hooks/hook", content=firing, headers=signed(firing))
        dark = not service.signals
        clock.advance(86400)  # the replay window (1 day) has passed: the README says so plainly
        late = await client.post("/hooks/hook", content=firing, headers=signed(firing))
    assert replayed.status_code == 401 and replayed.json()["error"].startswith("replayed request")
    assert dark
    assert late.status_code == 202


def grafana_or_github(status: str) -> bytes:
    """A body both a Grafana hook and the generic hook above read: one alert, keyed, firing or resolved."""
    alert = {"status": status, "labels": {"severity": "critical", "alertname": "Down"}, "fingerprint": "fp1",
             "annotations": {"summary": "shop down"}}
    return json.dumps({"version": "1", "status": status, "alerts": [alert], "title": "shop down", "key": "fp1"}
                      ).encode()


def test_the_replay_file_is_compacted_and_survives_damage(tmp_path: Path, clock: FakeClock) -> None:
    path = tmp_path / "replays"
    memory = ReplayMemory(clock, lambda: path)
    for i in range(200):
        memory.remember(f"sig-{i}", clock.now() + 10)
        clock.advance(1)
    assert len(path.read_text().splitlines()) <= 64 + 1  # rewritten without the expired lines
    with path.open("a") as file:
        file.write("garbage\n\n12 \n")
    again = ReplayMemory(clock, lambda: path)
    assert again.seen("sig-199") and not again.seen("sig-150") and not again.seen("garbage")
