"""The generic JSON webhook: mappings for Uptime Kuma, GitHub (signed), healthchecks.io and curl.

The bodies follow each sender's documented shape (Uptime Kuma's `heartbeat`/`monitor`/`msg`,
GitHub's `workflow_run` event and `ping`, healthchecks.io's user-written body).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from starlette.datastructures import Headers

from lamplighter.errors import AuthError, ConfigError, EventError
from lamplighter.model import Event, Status
from lamplighter.service import Service
from lamplighter.sources import build_sources
from lamplighter.sources.webhooks import GenericHook
from tests.conftest import START, FakeClock
from tests.test_hooks_common import hmac_hex, hook_client

KUMA = {"type": "webhook", "name": "kuma", "token": "kuma-token", "level": 911,
        "title": "{monitor.name} is down: {heartbeat.msg}", "key": "kuma-{monitor.id}",
        "status": {"from": "{heartbeat.status}", "map": {0: "firing", 1: "resolved"}}}
KUMA_AUTH = Headers({"Authorization": "Bearer kuma-token"})

GITHUB_SECRET = "It's a Secret to Everybody"
GITHUB = {"type": "webhook", "name": "github", "secret": GITHUB_SECRET, "level": "912",
          "title": "{workflow_run.name} on {workflow_run.head_branch}: {workflow_run.conclusion}",
          "key": "gh-{repository.full_name}-{workflow_run.name}", "sender": "{sender.login}",
          "body": "{workflow_run.html_url}",
          "status": {"from": "{action}/{workflow_run.conclusion}",
                     "map": {"completed/failure": "firing", "completed/timed_out": "firing",
                             "completed/success": "resolved"}}}


def hook(entry: dict[str, Any]) -> GenericHook:
    source = build_sources([entry], FakeClock())[entry.get("name", "webhook")]
    assert isinstance(source, GenericHook)
    return source


def parse(source: GenericHook, payload: Any, headers: Headers | None = None) -> list[Event]:
    body = json.dumps(payload).encode()
    source.authenticate(headers or KUMA_AUTH, body)
    return source.parse(headers or KUMA_AUTH, body, START)


def kuma(status: int | None, name: str = "shop") -> dict[str, Any]:
    if status is None:  # the "Test" button in Uptime Kuma's notification dialog
        return {"heartbeat": None, "monitor": None, "msg": "Uptime Kuma Webhook Test"}
    return {"heartbeat": {"monitorID": 7, "status": status, "time": "2026-11-24 21:00:00",
                          "msg": "connect ECONNREFUSED" if status == 0 else "200 - OK", "important": True},
            "monitor": {"id": 7, "name": name, "url": "https://shop.example", "type": "http"},
            "msg": f"[{name}] [{'Down' if status == 0 else 'Up'}]"}


def workflow_run(action: str, conclusion: str | None) -> dict[str, Any]:
    return {"action": action,
            "workflow_run": {"id": 30433642, "name": "CI", "head_branch": "main", "status": action,
                             "conclusion": conclusion, "html_url": "https://github.com/octo/app/actions/runs/30433642"},
            "repository": {"full_name": "octo/app"}, "sender": {"login": "octocat"}}


def github_headers(body: bytes, event: str = "workflow_run") -> Headers:
    return Headers({"X-GitHub-Event": event, "X-Hub-Signature-256": "sha256=" + hmac_hex(GITHUB_SECRET, body)})


def test_uptime_kuma_down_fires_up_resolves_and_pending_or_a_test_is_ignored() -> None:
    source = hook(KUMA)
    [down] = parse(source, kuma(0))
    assert (down.level, down.title, down.key, down.status, down.source) == (
        "911", "shop is down: connect ECONNREFUSED", "kuma-7", Status.FIRING, "kuma")
    [up] = parse(source, kuma(1))
    assert (up.key, up.status) == ("kuma-7", Status.RESOLVED)
    assert parse(source, kuma(2)) == [] and parse(source, kuma(None)) == []


def test_a_github_workflow_run_signed_with_x_hub_signature_256() -> None:
    source = hook(GITHUB)
    events = []
    for payload in (workflow_run("requested", None), workflow_run("completed", "failure"),
                    workflow_run("completed", "success"), {"zen": "Keep it logically awesome.", "hook_id": 1}):
        body = json.dumps(payload).encode()
        headers = github_headers(body, "ping" if "zen" in payload else "workflow_run")
        source.authenticate(headers, body)
        events += source.parse(headers, body, START)
    failed, passed = events  # the run being requested and the ping are ignored
    assert (failed.level, failed.title, failed.key, failed.status, failed.sender, failed.body) == (
        "912", "CI on main: failure", "gh-octo/app-CI", Status.FIRING, "octocat",
        "https://github.com/octo/app/actions/runs/30433642")
    assert (passed.key, passed.status) == ("gh-octo/app-CI", Status.RESOLVED)
    body = json.dumps(workflow_run("completed", "failure")).encode()
    with pytest.raises(AuthError, match="missing signature: send X-Hub-Signature-256"):
        source.authenticate(Headers({"X-GitHub-Event": "workflow_run"}), body)
    with pytest.raises(AuthError, match="bad signature in X-Hub-Signature-256"):
        source.authenticate(github_headers(body), body.replace(b"failure", b"success"))


def test_a_healthchecks_io_body_written_by_the_user() -> None:
    source = hook({"type": "webhook", "name": "hc", "token": "hc-token", "level": "912", "key": "hc-{check}",
                   "title": "{check} is {status}", "labels": {"check": "{check}", "code": "{code}"},
                   "status": {"from": "{status}", "map": {"down": "firing", "up": "resolved"}}})
    headers = Headers({"Authorization": "Bearer hc-token"})
    [down] = parse(source, {"check": "backup", "status": "down", "code": "1a2b"}, headers)
    assert (down.title, down.key, down.status, down.labels) == (
        "backup is down", "hc-backup", Status.FIRING, {"check": "backup", "code": "1a2b"})


def test_a_shell_curl_can_send_anything_it_maps() -> None:
    source = hook({"type": "webhook", "name": "shell", "token": "sh", "level": "{level|'912'}", "title": "{title}",
                   "key": "{key}", "status": "{status|'firing'}"})
    headers = Headers({"Authorization": "Bearer sh"})
    [event] = parse(source, {"title": "disk 90% on db-2", "key": "disk-db-2"}, headers)
    assert (event.level, event.title, event.key, event.status) == ("912", "disk 90% on db-2", "disk-db-2",
                                                                   Status.FIRING)
    with pytest.raises(EventError, match=r"title: the template '\{title\}' gives nothing for this body"):
        parse(source, {"level": "911"}, headers)
    with pytest.raises(EventError, match="status: must be 'firing' or 'resolved', not 'done'"):
        parse(source, {"title": "x", "status": "done"}, headers)


def test_a_mapping_mistake_is_reported_with_its_place_in_the_file() -> None:
    with pytest.raises(ConfigError) as caught:
        build_sources([{"type": "webhook", "token": "t", "title": "{a", "status": {"map": {}}, "labels": {"x": []}}],
                      FakeClock())
    problems = dict(caught.value.problems)
    assert problems["sources.0.level"] == "Field required"
    assert problems["sources.0.title"].startswith("unmatched '{' at position 0")
    assert problems["sources.0.status.from"] == "Field required"
    assert problems["sources.0.labels.x"].startswith("must be text")


async def test_uptime_kuma_through_the_service(service_factory: Callable[..., Service], clock: FakeClock) -> None:
    entry = ", ".join(f"{k}: {json.dumps(v)}" for k, v in KUMA.items())
    service = service_factory(f"sources:\n  - {{{entry}}}\n")
    async with hook_client(service) as client:
        outcomes = []
        for status in (0, 0, 2, 1):
            answer = await client.post("/hooks/kuma", json=kuma(status), headers=dict(KUMA_AUTH))
            assert answer.status_code == 202
            outcomes.append([r["outcome"] for r in answer.json()["events"]])
            clock.advance(20)
        refused = await client.post("/hooks/kuma", json=kuma(0), headers={"Authorization": "Bearer nope"})
    assert outcomes == [["shown"], ["deduplicated"], [], ["resolved"]]
    assert refused.status_code == 401 and refused.json() == {"error": "wrong token"}
