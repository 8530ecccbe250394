"""The Grafana webhook contact point, from its documented shape, with and without its HMAC signature."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from starlette.datastructures import Headers

from lamplighter.errors import AuthError, EventError
from lamplighter.model import Status
from lamplighter.service import Service
from lamplighter.sources import build_sources
from lamplighter.sources.webhooks import GrafanaHook
from tests.conftest import START, FakeClock
from tests.test_hooks_common import hmac_hex, hook_client, sample

SECRET = "grafana-hmac-secret"
BODY = json.dumps(sample("grafana.json")).encode()


def hook(clock: FakeClock | None = None, **settings: Any) -> GrafanaHook:
    entry = {"type": "grafana", **(settings or {"secret": SECRET})}
    source = build_sources([entry], clock or FakeClock())["grafana"]
    assert isinstance(source, GrafanaHook)
    return source


def signed(body: bytes = BODY, secret: str = SECRET, **extra: str) -> Headers:
    return Headers({"X-Grafana-Alerting-Signature": hmac_hex(secret, body), **extra})


def test_the_documented_payload_gives_one_event_per_alert_with_grafanas_fields_in_the_body() -> None:
    firing, resolved = hook().parse(signed(), BODY, START)
    assert (firing.level, firing.title, firing.key, firing.status) == (
        "911", "Checkout p99 above 2 s", "5c8c0a1ae1b6f0e2", Status.FIRING)
    assert firing.body == ("p99 of /checkout has been above 2 s for 5 minutes\n"
                           "[ var='A' labels={service=checkout} value=2.71 ], [ var='C' labels={service=checkout} "
                           "value=1 ]\nhttp://grafana.local/d/shop01?orgId=1&viewPanel=4")
    assert firing.labels["grafana_folder"] == "shop" and firing.source == "grafana"
    assert (resolved.level, resolved.key, resolved.status) == ("912", "0b1f4e3c9a7d2e11", Status.RESOLVED)
    assert resolved.body == '{"B": 0.004}\nhttp://grafana.local/alerting/grafana/cdzq2/view?orgId=1'


def test_grafanas_values_reach_the_templates() -> None:
    source = hook(secret=SECRET, title="{labels.service}: A={values.A}", body="{silenceURL}")
    firing, _ = source.parse(signed(), BODY, START)
    assert firing.title == "checkout: A=2.71"
    assert firing.body.startswith("http://grafana.local/alerting/silence/new")


def test_an_alertmanager_payload_is_not_grafanas() -> None:
    with pytest.raises(EventError, match="version: expected webhook payload version 1, not '4'"):
        hook().parse(Headers(), json.dumps(sample("alertmanager.json")).encode(), START)


def test_the_hmac_signature_is_checked_over_the_raw_body() -> None:
    source = hook()
    source.authenticate(signed(), BODY)
    for headers, message in [(Headers(), "missing signature: send X-Grafana-Alerting-Signature"),
                             (signed(secret="other"), "bad signature in X-Grafana-Alerting-Signature"),
                             (signed(body=BODY + b"\n"), "bad signature")]:
        with pytest.raises(AuthError, match=message):
            source.authenticate(headers, BODY)


def test_a_timestamp_header_adds_a_replay_window() -> None:
    clock = FakeClock()
    source = hook(clock, secret=SECRET, timestamp_header="X-Grafana-Alerting-Timestamp", max_age="1m")

    def stamped(at: float) -> Headers:
        stamp = str(int(at))
        return Headers({"X-Grafana-Alerting-Timestamp": stamp,
                        "X-Grafana-Alerting-Signature": hmac_hex(SECRET, f"{stamp}:".encode() + BODY)})

    request = stamped(clock.now())
    source.authenticate(request, BODY)
    clock.advance(61)
    with pytest.raises(AuthError, match="stale timestamp"):
        source.authenticate(request, BODY)  # replayed later
    with pytest.raises(AuthError, match="missing timestamp: send X-Grafana-Alerting-Timestamp"):
        source.authenticate(signed(), BODY)
    with pytest.raises(AuthError, match="bad signature"):  # a fresh timestamp the signature does not cover
        source.authenticate(signed(**{"X-Grafana-Alerting-Timestamp": str(int(clock.now()))}), BODY)


def test_token_and_secret_together_both_count() -> None:
    source = hook(token="t0k", secret=SECRET, signature_header="X-Sig")
    both = {"Authorization": "Bearer t0k", "X-Sig": hmac_hex(SECRET, BODY)}
    source.authenticate(Headers(both), BODY)
    with pytest.raises(AuthError, match="missing token"):
        source.authenticate(Headers({"X-Sig": both["X-Sig"]}), BODY)
    with pytest.raises(AuthError, match="missing signature: send X-Sig"):
        source.authenticate(Headers({"Authorization": "Bearer t0k"}), BODY)
    token_only = hook(token="t0k")
    token_only.authenticate(Headers({"Authorization": "Bearer t0k"}), BODY)


async def test_a_signed_notification_lights_the_lamp_and_an_unsigned_one_is_refused(
        service_factory: Callable[..., Service]) -> None:
    service = service_factory(f"sources:\n  - {{type: grafana, name: shop, secret: {SECRET}}}\n")
    async with hook_client(service) as client:
        refused = await client.post("/hooks/shop", content=BODY)
        assert refused.status_code == 401
        assert refused.json()["error"] == "missing signature: send X-Grafana-Alerting-Signature"
        answer = await client.post("/hooks/shop", content=BODY, headers=dict(signed()))
        assert answer.status_code == 202
        assert [r["outcome"] for r in answer.json()["events"]] == ["shown", "resolved"]
        assert [(s.level, s.key) for s in service.signals.values()] == [("911", "5c8c0a1ae1b6f0e2")]
