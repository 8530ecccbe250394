"""The Alertmanager webhook: the captured payloads, the router's dedup and resolve, and a real Alertmanager."""

from __future__ import annotations

import asyncio
import copy
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.datastructures import Headers

from lamplighter.errors import AuthError, EventError
from lamplighter.model import Status
from lamplighter.service import Service
from lamplighter.sources import build_sources
from lamplighter.sources.webhooks import AlertmanagerHook
from tests.conftest import START, FakeClock
from tests.daemon import Daemon, free_port
from tests.peers.alertmanager import Alertmanager
from tests.test_hooks_common import events_api, hook_client, sample

TOKEN = "am-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SOURCE = f"sources:\n  - {{type: alertmanager, token: {TOKEN}}}\n"


def hook(**settings: Any) -> AlertmanagerHook:
    source = build_sources([{"type": "alertmanager", "token": TOKEN, **settings}], FakeClock())["alertmanager"]
    assert isinstance(source, AlertmanagerHook)
    return source


def parse(source: AlertmanagerHook, payload: dict[str, Any]) -> list[Any]:
    body = json.dumps(payload).encode()
    source.authenticate(Headers(AUTH), body)
    return source.parse(Headers(AUTH), body, START)


def with_alerts(*alerts: dict[str, Any]) -> dict[str, Any]:
    """The captured notification carrying other alerts (labels and fingerprints of the test's choosing)."""
    payload = copy.deepcopy(sample("alertmanager.json"))
    base = payload["alerts"][0]
    payload["alerts"] = [{**copy.deepcopy(base), **alert} for alert in alerts]
    return payload


# ---- the payload -----------------------------------------------------------------------------


def test_the_captured_firing_alert_becomes_a_911_keyed_by_its_fingerprint() -> None:
    [event] = parse(hook(), sample("alertmanager.json"))
    assert (event.level, event.title, event.key, event.status) == (
        "911", "Disk / is 97% full", "32807bf8d27e3d47", Status.FIRING)
    assert event.body == "Root fs on web1 above 95%\nhttp://prometheus.local/graph"
    assert event.source == "alertmanager" and event.sender == "DiskFull/32807bf8d27e3d47"
    assert event.labels == {"alertname": "DiskFull", "instance": "web1:9100", "job": "node", "severity": "critical"}
    assert event.received_at == START


def test_the_captured_resolution_carries_the_same_key() -> None:
    [event] = parse(hook(), sample("alertmanager-resolved.json"))
    assert (event.level, event.key, event.status) == ("911", "32807bf8d27e3d47", Status.RESOLVED)


def test_severity_picks_the_level_and_other_severities_are_ignored() -> None:
    alerts = [{"fingerprint": f"f{severity}", "labels": {"alertname": "A", "severity": severity}}
              for severity in ("critical", "warning", "none", "info")]
    events = parse(hook(), with_alerts(*alerts, {"fingerprint": "nolabel", "labels": {"alertname": "B"}}))
    assert [(e.key, e.level) for e in events] == [("fcritical", "911"), ("fwarning", "912")]


def test_the_level_mapping_and_templates_are_configurable() -> None:
    source = hook(level={"from": "{labels.priority}", "map": {"P1": 911, "P2": "door"}, "default": "912"},
                  title="{labels.alertname} on {labels.instance|'?'}", body="{annotations.runbook|'no runbook'}")
    events = parse(source, with_alerts({"fingerprint": "a", "labels": {"alertname": "Up", "priority": "P2"}},
                                       {"fingerprint": "b", "labels": {"alertname": "Up", "instance": "db"}}))
    assert [(e.level, e.title, e.body) for e in events] == [("door", "Up on ?", "no runbook"),
                                                            ("912", "Up on db", "no runbook")]


def test_an_alert_without_summary_or_name_is_titled_by_its_fingerprint() -> None:
    [event] = parse(hook(), with_alerts({"fingerprint": "abc", "labels": {"severity": "critical"},
                                         "annotations": {}}))
    assert event.title == "abc"


@pytest.mark.parametrize(("change", "message"), [
    (lambda p: p.update(version="3"), "version: expected webhook payload version 4, not '3'"),
    (lambda p: p.pop("alerts"), "alerts: Field required"),
    (lambda p: p["alerts"][0].pop("fingerprint"), "alerts.0.fingerprint: Field required"),
    (lambda p: p["alerts"][0].update(status="pending"), "alerts.0.status: Input should be 'firing' or 'resolved'"),
    (lambda p: p["alerts"][0]["labels"].update(severity=3), "alerts.0.labels.severity: Input should be a valid string"),
])
def test_a_malformed_notification_names_the_field(change: Callable[[dict[str, Any]], Any], message: str) -> None:
    payload = sample("alertmanager.json")
    change(payload)
    with pytest.raises(EventError, match=re.escape(message)):
        parse(hook(), payload)


def test_the_token_is_required() -> None:
    source = hook()
    with pytest.raises(AuthError, match="missing token"):
        source.authenticate(Headers({}), b"{}")
    with pytest.raises(AuthError, match="wrong token"):
        source.authenticate(Headers({"Authorization": "Bearer nope"}), b"{}")


# ---- through the service ---------------------------------------------------------------------


async def test_repeats_and_retries_never_show_twice_and_resolve_ends_the_signal(
        service_factory: Callable[..., Service], clock: FakeClock) -> None:
    service = service_factory(SOURCE + "levels: {911: {hold: until_ack}}\n")
    firing, resolved = sample("alertmanager.json"), sample("alertmanager-resolved.json")
    async with hook_client(service) as client:
        outcomes = []
        for payload, later in [(firing, 0.5), (firing, 60), (firing, 600), (resolved, 1), (firing, 0)]:
            answer = await client.post("/hooks/alertmanager", json=payload, headers=AUTH)
            assert answer.status_code == 202
            outcomes += [(r["outcome"], r["reasons"]) for r in answer.json()["events"]]
            clock.advance(later)
        stored = await events_api(client)
    assert outcomes == [
        ("shown", []),
        ("deduplicated", ["same key as active event 1; hold refreshed"]),  # a retry
        ("deduplicated", ["same key as active event 1; hold refreshed"]),  # a repeat ten minutes on
        ("resolved", ["ended signal 1"]),
        ("shown", []),  # firing again after the resolution is a new incident
    ]
    assert {e["key"] for e in stored} == {"32807bf8d27e3d47"} and {e["source"] for e in stored} == {"alertmanager"}


async def test_one_notification_with_three_alerts_gives_three_signals_under_the_default_guards(
        service_factory: Callable[..., Service]) -> None:
    service = service_factory(SOURCE)
    alerts = [{"fingerprint": f"disk{i}", "labels": {"alertname": "DiskFull", "severity": "critical"}}
              for i in range(3)]
    async with hook_client(service) as client:
        answer = await client.post("/hooks/alertmanager", json=with_alerts(*alerts), headers=AUTH)
    assert [r["outcome"] for r in answer.json()["events"]] == ["shown", "shown", "shown"]


async def test_the_http_answers(service_factory: Callable[..., Service]) -> None:
    service = service_factory(SOURCE)
    async with hook_client(service) as client:
        assert (await client.post("/hooks/alertmanager", json=sample("alertmanager.json"))).status_code == 401
        wrong = await client.post("/hooks/alertmanager", json={"version": "4"}, headers=AUTH)
        assert wrong.status_code == 422 and wrong.json()["error"] == "alerts: Field required"
        ignored = with_alerts({"labels": {"alertname": "Watchdog", "severity": "none"}})
        assert (await client.post("/hooks/alertmanager", json=ignored, headers=AUTH)).json() == {"events": []}
        assert service.store.count_events() == 0
        assert service.sources["alertmanager"].health.last_event_at is not None  # the Watchdog was heard


@pytest.mark.virtual_time
async def test_an_ignored_watchdog_alert_still_keeps_the_dead_mans_switch_quiet(
        service_factory: Callable[..., Service]) -> None:
    service = service_factory(f"sources:\n  - {{type: alertmanager, token: {TOKEN}, expect_every: 10m}}\n")
    watchdog = with_alerts({"fingerprint": "wd", "labels": {"alertname": "Watchdog", "severity": "none"}})
    async with hook_client(service) as client:
        await asyncio.sleep(601)
        assert [s.level for s in service.signals.values()] == ["blind"]
        answer = await client.post("/hooks/alertmanager", json=watchdog, headers=AUTH)
        assert answer.json() == {"events": []}
        await asyncio.sleep(0)  # the watchdog looks again on the loop's next turn
        assert service.signals == {}
        assert [(e["source"], e["outcome"]) for e in await events_api(client)] == [
            ("watchdog", "shown"), ("watchdog", "resolved")]


# ---- a real Alertmanager ---------------------------------------------------------------------


class FlakyProxy(ThreadingHTTPServer):
    """Forwards each POST to Lamplighter, but answers the first one 503: Alertmanager must retry
    a notification Lamplighter has in fact stored (a lost answer), and nothing may show twice."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.deliveries: list[dict[str, Any]] = []
        super().__init__(("127.0.0.1", free_port()), _ProxyHandler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _ProxyHandler(BaseHTTPRequestHandler):
    server: FlakyProxy

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        answer = httpx.post(self.server.target + self.path, content=body,
                            headers={"Authorization": self.headers["Authorization"]}, timeout=5)
        self.server.deliveries.append(json.loads(body))
        self.send_response(503 if len(self.server.deliveries) == 1 else answer.status_code)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def flaky_proxy() -> Callable[[str], FlakyProxy]:
    proxies: list[FlakyProxy] = []

    def start(target: str) -> FlakyProxy:
        proxy = FlakyProxy(target)
        threading.Thread(target=proxy.serve_forever, daemon=True).start()
        proxies.append(proxy)
        return proxy

    yield start  # type: ignore[misc]
    for proxy in proxies:
        proxy.shutdown()
        proxy.server_close()


def desk(client: httpx.Client) -> dict[str, Any]:
    return {lamp["name"]: lamp for lamp in client.get("/api/lamps").json()}["desk"]  # type: ignore[no-any-return]


def applies(client: httpx.Client) -> float:
    match = re.search(r'lamplighter_lamp_applies_total\{lamp="desk"\} (\S+)', client.get("/metrics").text)
    return float(match.group(1)) if match else 0.0


def wait_until(check: Callable[[], Any], timeout: float = 15.0) -> float:
    start = time.monotonic()
    while not check():
        assert time.monotonic() - start < timeout, "condition not reached in time"
        time.sleep(0.02)
    return time.monotonic() - start


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[Callable[..., Alertmanager]]:
    started: list[Alertmanager] = []

    def start(webhook_url: str, **options: Any) -> Alertmanager:
        started.append(Alertmanager(tmp_path / "alertmanager", webhook_url, TOKEN, **options).start())
        return started[-1]

    yield start
    for am in started:
        am.stop()


@pytest.mark.slow
def test_a_real_alertmanager_alert_turns_the_lamp_red_and_its_resolution_restores_it(
        daemon: Callable[..., Daemon], alertmanager: Callable[..., Alertmanager],
        flaky_proxy: Callable[[str], FlakyProxy]) -> None:
    d = daemon("lamps: {desk: 'virtual://desk?on=true&color=warmwhite&brightness=40'}\n"
               "levels: {911: {hold: 10m}}\n" + SOURCE)
    proxy = flaky_proxy(d.url)
    am = alertmanager(f"{proxy.url}/hooks/alertmanager", repeat_interval="2s")
    labels = {"alertname": "DiskFull", "instance": "web1:9100", "severity": "critical"}
    am.fire(labels, summary="Disk / is 97% full", description="Root fs on web1 above 95%")
    with d.client() as client:
        initial = desk(client)["state"]
        took = wait_until(lambda: desk(client)["state"]["color"] == "#ff0000")
        assert took < 5  # group_wait is 1 s
        fingerprint = am.fingerprint(labels)
        assert desk(client)["showing"]["title"] == "Disk / is 97% full"
        # the first delivery was answered 503 and retried; repeat_interval 2 s sends it again
        wait_until(lambda: len(proxy.deliveries) >= 3)
        firing = [(e["outcome"], e["key"]) for e in reversed(client.get("/api/events").json())]
        assert firing[0] == ("shown", fingerprint)
        assert firing[1:] == [("deduplicated", fingerprint)] * (len(firing) - 1) and len(firing) >= 3
        assert applies(client) == 1

        am.resolve(labels)
        wait_until(lambda: desk(client)["showing"] is None)
        assert desk(client)["state"] == initial
        last = client.get("/api/events", params={"limit": 1}).json()[0]
        assert (last["outcome"], last["key"], last["status"]) == ("resolved", fingerprint, "resolved")
        assert applies(client) == 2  # red once, restored once, however often Alertmanager spoke
