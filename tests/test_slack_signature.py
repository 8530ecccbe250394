"""Slack's request signature: each failed check is refused with a message naming it.

The verifier is tested under a fake clock, then the same refusals are seen as 401s through
the daemon's real POST /hooks/NAME route (uvicorn on loopback), where nothing is stored.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from lamplighter.errors import AuthError
from lamplighter.service import Service
from lamplighter.sources.slack.signature import RequestVerifier
from tests.conftest import START, FakeClock
from tests.peers.fake_slack import SIGNING_SECRET, form_body, signed_headers
from tests.serving import serving

BODY = form_body()


@pytest.fixture
def verifier(clock: FakeClock) -> RequestVerifier:
    return RequestVerifier(SIGNING_SECRET, clock)


def refusal(verifier: RequestVerifier, headers: dict[str, str], body: bytes = BODY) -> str:
    with pytest.raises(AuthError) as refused:
        verifier.check(headers, body)
    return str(refused.value)


def test_a_request_signed_with_the_secret_passes(verifier: RequestVerifier) -> None:
    verifier.check(signed_headers(BODY, START), BODY)
    verifier.check({k.lower(): v for k, v in signed_headers(b"other", START - 299).items()}, b"other")


def test_each_failed_check_names_itself(verifier: RequestVerifier) -> None:
    good = signed_headers(BODY, START)
    assert refusal(verifier, {}) == ("missing X-Slack-Signature or X-Slack-Request-Timestamp: not a request "
                                     "from Slack")
    assert refusal(verifier, {**good, "X-Slack-Request-Timestamp": "noon"}) == (
        "X-Slack-Request-Timestamp is not a number of seconds")
    assert refusal(verifier, good, BODY + b"&text=changed").startswith("bad signature: X-Slack-Signature does not "
                                                                        "match the body")
    assert refusal(verifier, signed_headers(BODY, START, secret="another app's secret")).startswith("bad signature")
    assert refusal(verifier, signed_headers(b"\xff", START), b"\xff").startswith("bad signature")


def test_a_timestamp_more_than_five_minutes_off_is_stale(verifier: RequestVerifier) -> None:
    assert refusal(verifier, signed_headers(BODY, START - 301)) == (
        "stale timestamp: X-Slack-Request-Timestamp is 5m1s old (at most 5m either way); a replay, or this "
        "machine's clock is off")
    assert "is 10m in the future" in refusal(verifier, signed_headers(BODY, START + 600))


def test_a_replayed_request_is_refused_and_forgotten_once_it_could_no_longer_pass(
        verifier: RequestVerifier, clock: FakeClock) -> None:
    headers = signed_headers(BODY, START)
    verifier.check(headers, BODY)
    assert refusal(verifier, headers) == "replayed request: this X-Slack-Signature was already accepted"
    clock.advance(301)
    assert refusal(verifier, headers).startswith("stale timestamp")  # the window closed the replay for good ...
    verifier.check(signed_headers(BODY, clock.now()), BODY)
    assert len(verifier._replays._memory()) == 1  # ... so the first signature is no longer remembered


@pytest.fixture
async def hooks(service_factory: Callable[..., Service]) -> AsyncIterator[tuple[httpx.AsyncClient, Service]]:
    service = service_factory(f"sources:\n  - {{type: slack, signing_secret: {SIGNING_SECRET}}}\n")
    async with serving(service, "api-token") as url, httpx.AsyncClient(base_url=url) as client:
        yield client, service


async def test_the_webhook_route_refuses_bad_stale_and_replayed_requests_with_401(
        hooks: tuple[httpx.AsyncClient, Service]) -> None:
    client, service = hooks

    async def post(headers: dict[str, str], body: bytes = BODY) -> httpx.Response:
        return await client.post("/hooks/slack", content=body, headers=headers)

    bad = await post(signed_headers(BODY, START, secret="wrong"))
    assert bad.status_code == 401 and bad.json()["error"].startswith("bad signature")
    stale = await post(signed_headers(BODY, START - 3600))
    assert stale.status_code == 401 and stale.json()["error"].startswith("stale timestamp")
    first = signed_headers(BODY, START)
    assert (await post(first)).status_code < 300
    replayed = await post(first)
    assert replayed.status_code == 401 and replayed.json()["error"].startswith("replayed request")
    assert service.store.count_events() <= 1  # only the accepted request may have stored anything


async def test_the_webhook_route_answers_a_signed_911_with_the_reply_slack_shows(
        hooks: tuple[httpx.AsyncClient, Service]) -> None:
    client, service = hooks
    began = time.perf_counter()
    answer = await client.post("/hooks/slack", content=BODY, headers=signed_headers(BODY, START))
    took = time.perf_counter() - began
    assert answer.status_code == 200
    assert answer.json() == {"response_type": "ephemeral", "text": "💡 On the lamp now: *911* “payments API returns "
                                                                   "500 for everyone” (event 1, from <@U2147483697>)."}
    assert service.store.event(1).source == "slack"
    print(f"\nHTTP /911 answered in {took * 1000:.1f} ms (Slack allows 3000 ms)")
