"""What the webhook sources share: field paths, templates, values, tokens and HMAC signatures.

Also the helpers the other tests/test_hooks_*.py import: an HTTP client on a running service
(the FastAPI app in process) and a signer.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError
from starlette.datastructures import Headers

from lamplighter.errors import AuthError, ConfigError, EventError
from lamplighter.service import Service
from lamplighter.sources import build_sources
from lamplighter.sources.webhooks.common import (
    Signature,
    Template,
    Value,
    check_bearer,
    compact,
    load_json,
    lookup,
    parse_path,
)
from lamplighter.web.app import create_app
from tests.conftest import START, FakeClock

DATA = Path(__file__).parent / "data" / "hooks"
API_TOKEN = "api-token"


def sample(name: str) -> dict[str, Any]:
    """A payload from tests/data/hooks/ (captured from the real program, or a documented shape)."""
    loaded: dict[str, Any] = json.loads((DATA / name).read_text())
    return loaded


def hmac_hex(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


@contextlib.asynccontextmanager
async def hook_client(service: Service) -> AsyncIterator[httpx.AsyncClient]:
    """The HTTP app of a running service, called in process (the real-server path is in the peer tests)."""
    async with service.running():
        transport = httpx.ASGITransport(app=create_app(service, API_TOKEN))
        async with httpx.AsyncClient(transport=transport, base_url="http://lamplighter") as client:
            yield client


async def events_api(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    """GET /api/events, oldest first."""
    answer = await client.get("/api/events", headers={"Authorization": f"Bearer {API_TOKEN}"})
    return list(reversed(answer.json()))


# ---- field paths and templates ---------------------------------------------------------------

DOC = {"monitor": {"name": "api", "id": 7}, "tags": ["prod", "eu"], "ok": True, "n": 0.5,
       "values": {"B": 44.5, "C": 1}, "empty": "", "null": None, "list": [{"x": 1}]}


@pytest.mark.parametrize(("path", "value"), [
    ("monitor.name", "api"), ("monitor.id", 7), ("tags.1", "eu"), ("tags.-1", "eu"), ("list.0.x", 1),
    ("tags.2", None), ("monitor.name.x", None), ("nothing", None), ("null", None), ("tags.x", None),
])
def test_a_field_path_finds_keys_and_list_positions_or_nothing(path: str, value: Any) -> None:
    assert lookup(DOC, parse_path(path)) == value


@pytest.mark.parametrize("bad", ["", "a..b", ".a", "a.", "a. b"])
def test_a_malformed_field_path_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="not a field path"):
        parse_path(bad)


@pytest.mark.parametrize(("text", "rendered"), [
    ("{monitor.name} is down", "api is down"),
    ("#{monitor.id} ok={ok} n={n}", "#7 ok=true n=0.5"),
    ("{values}", '{"B": 44.5, "C": 1}'),
    ("{empty|null|monitor.name}", "api"),
    ("{missing|'none yet'}", "none yet"),
    ('{missing|"double"}', "double"),
    ("{missing}", ""),
    ("{{literal}} {tags.0}", "{literal} prod"),
    ("911", "911"),
    ("", ""),
])
def test_a_template_fills_its_placeholders_from_the_body(text: str, rendered: str) -> None:
    assert Template.parse(text).render(DOC) == rendered


@pytest.mark.parametrize("bad", ["{monitor.name", "a } b", "{}", "{a||b}", "{a.}"])
def test_a_malformed_template_is_refused_with_its_text(bad: str) -> None:
    with pytest.raises(ValueError, match=r"not a field path|unmatched"):
        Template.parse(bad)


def test_a_value_maps_what_its_template_renders_and_null_means_ignore() -> None:
    status = Value.model_validate({"from": "{heartbeat.status}", "map": {0: "firing", 1: "resolved", 2: None}})
    assert [status.resolve({"heartbeat": {"status": s}}) for s in (0, 1, 2, 3)] == ["firing", "resolved", None, None]
    with_default = Value.model_validate({"from": "{ok}", "map": {True: 911}, "default": "912"})
    assert with_default.resolve({"ok": True}) == "911" and with_default.resolve({"ok": False}) == "912"
    assert Value.model_validate(911).resolve({}) == "911"  # YAML reads `level: 911` as a number
    assert Value.model_validate("{monitor.name}").resolve(DOC) == "api"


def test_value_mistakes_are_named() -> None:
    with pytest.raises(ValidationError, match="default applies only with map"):
        Value.model_validate({"from": "{a}", "default": "x"})
    with pytest.raises(ValidationError, match="from"):
        Value.model_validate({"map": {"a": "b"}})
    with pytest.raises(ValidationError, match="must be text"):
        Value.model_validate(["a"])


def test_body_helpers() -> None:
    assert load_json(b'{"a": 1}') == {"a": 1}
    with pytest.raises(EventError, match="body: not valid JSON"):
        load_json(b"{nope")
    with pytest.raises(EventError, match="body: not valid JSON"):
        load_json(b"\xff\xfe\xfa")
    assert compact("  first \n\n   \nsecond\n") == "first\nsecond"


# ---- credentials -----------------------------------------------------------------------------


@pytest.mark.parametrize(("header", "message"), [
    (None, "missing token: send Authorization: Bearer TOKEN"),
    ("Bearer wrong", "wrong token"),
    ("Basic s3cret", "wrong token"),
    ("s3cret", "wrong token"),
    ("Bearer ", "wrong token"),
])
def test_a_bearer_token_is_required_and_compared(header: str | None, message: str) -> None:
    headers = Headers({} if header is None else {"Authorization": header})
    with pytest.raises(AuthError, match=message):
        check_bearer(headers, "s3cret")
    check_bearer(Headers({"authorization": "bearer s3cret"}), "s3cret")


def test_a_github_signature_is_checked_over_the_raw_body() -> None:
    body = b'{"zen": "Design for failure."}'
    github = Signature("X-Hub-Signature-256", "sha256=")
    good = "sha256=" + hmac_hex("It's a Secret to Everybody", body)
    github.check(Headers({"X-Hub-Signature-256": good}), body, "It's a Secret to Everybody", START)
    github.check(Headers({"X-Hub-Signature-256": good.upper().replace("SHA256=", "sha256=")}), body,
                 "It's a Secret to Everybody", START)
    for headers, message in [({}, "missing signature: send X-Hub-Signature-256"),
                             ({"X-Hub-Signature-256": good[7:]}, "bad signature"),
                             ({"X-Hub-Signature-256": "sha256=" + hmac_hex("other", body)}, "bad signature")]:
        with pytest.raises(AuthError, match=message):
            github.check(Headers(headers), body, "It's a Secret to Everybody", START)
    with pytest.raises(AuthError, match="bad signature"):
        github.check(Headers({"X-Hub-Signature-256": good}), body + b" ", "It's a Secret to Everybody", START)


def test_a_timestamped_signature_covers_the_time_and_refuses_a_stale_one() -> None:
    body = b'{"status": "firing"}'
    grafana = Signature("X-Grafana-Alerting-Signature", timestamp_header="X-Grafana-Alerting-Timestamp", max_age=300)

    def headers(at: float, signed_at: float | None = None) -> Headers:
        stamp = str(int(at))
        signed = f"{int(signed_at if signed_at is not None else at)}:".encode() + body
        return Headers({"X-Grafana-Alerting-Signature": hmac_hex("k", signed), "X-Grafana-Alerting-Timestamp": stamp})

    grafana.check(headers(START - 299), body, "k", START)
    with pytest.raises(AuthError, match=r"stale timestamp in X-Grafana-Alerting-Timestamp: 5m1s away from now"):
        grafana.check(headers(START - 301), body, "k", START)
    with pytest.raises(AuthError, match="bad signature"):  # a fresh timestamp on an old signature
        grafana.check(headers(START, signed_at=START - 3600), body, "k", START)
    with pytest.raises(AuthError, match="missing timestamp: send X-Grafana-Alerting-Timestamp"):
        grafana.check(Headers({"X-Grafana-Alerting-Signature": hmac_hex("k", body)}), body, "k", START)


def test_every_webhook_type_needs_a_credential_and_never_prints_it() -> None:
    with pytest.raises(ConfigError) as caught:
        build_sources([{"type": "alertmanager"}, {"type": "buildbot", "token": ""},
                       {"type": "grafana"}, {"type": "webhook", "level": "911", "title": "x"}], FakeClock())
    problems = dict(caught.value.problems)
    assert problems["sources.0.token"] == "Field required"
    assert problems["sources.1.token"] == "String should have at least 1 character"
    assert problems["sources.2"] == problems["sources.3"] == (
        "set token, secret, or both: a webhook that anybody may call is refused")
    built = build_sources([{"type": "grafana", "token": "tok-123", "secret": "sec-456"}], FakeClock())
    shown = repr(built["grafana"].settings)
    assert "tok-123" not in shown and "sec-456" not in shown
