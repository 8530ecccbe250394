"""`webhook://`, `webhook+https://` and `ifttt://` against HTTP receivers on loopback (tests/peers/fake_hooks.py)."""

from __future__ import annotations

import base64
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from lamplighter.drivers.registry import build_driver
from lamplighter.errors import DeviceOffline, DriverError
from lamplighter.model import make_event
from lamplighter.service import Service
from tests.peers.fake_hooks import IFTTT_KEY, FakeIfttt, FakeWebhook
from tests.peers.http_fake import most_in_any_window
from tests.peers.lamps import LAMP, RED, eventually, offline_logs, running_lamp
from tests.peers.tls import self_signed

pytestmark = pytest.mark.real_time  # services and lamps driving real peers on the real clock

TOKEN = "s3cret-hook-token"
RED_BODY = {"on": True, "color": "#ff0000", "brightness": 100, "effect": "solid",
            "signal": {"level": "911", "title": "payments down", "event_id": 1}}
OFF_BODY = {"on": False, "color": "#ffffff", "brightness": 100, "effect": "solid", "signal": None}


@pytest.fixture
async def hook() -> AsyncIterator[FakeWebhook]:
    async with FakeWebhook(token=TOKEN) as fake:
        yield fake


@pytest.fixture
async def ifttt() -> AsyncIterator[FakeIfttt]:
    async with FakeIfttt() as fake:
        yield fake


def hook_url(hook: FakeWebhook, token: str = TOKEN) -> str:
    return f"webhook://127.0.0.1:{hook.port}/lamps/desk?token={token}&timeout=0.5"


def ifttt_url(ifttt: FakeIfttt, key: str = IFTTT_KEY) -> str:
    return f"ifttt://{key}@office_lamp?base_url={ifttt.base_url}&timeout=0.5"


def send_911(service: Service) -> int:
    return service.submit(make_event("911", "payments down", received_at=service.clock.now())).id


async def test_a_911_posts_the_lamps_whole_state_with_the_token_and_the_ack_posts_what_was_there_before(
        hook: FakeWebhook, service_factory: Callable[..., Service]) -> None:
    service = service_factory(f"lamps: {{{LAMP}: '{hook_url(hook)}'}}\n")
    async with service.running():
        alarm = send_911(service)
        await eventually(lambda: len(hook.posts) == 1)
        service.acknowledge(alarm, by="alice")
        await eventually(lambda: len(hook.posts) == 2)
    assert [p.body for p in hook.posts] == [RED_BODY, OFF_BODY]
    assert {(p.path, p.headers["authorization"]) for p in hook.posts} == {("/lamps/desk", f"Bearer {TOKEN}")}


async def test_webhook_https_verifies_the_certificate_and_sends_basic_auth(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    certificate, _ = tls = self_signed(tmp_path)
    async with FakeWebhook(certificate=tls) as secure:
        url = f"webhook+https://lamp:pa%40ss@127.0.0.1:{secure.port}/hook"
        untrusting = build_driver(url)
        with pytest.raises(DeviceOffline, match="TLS certificate is not trusted"):
            await untrusting.apply(RED)
        await untrusting.close()
        monkeypatch.setenv("SSL_CERT_FILE", str(certificate))  # how a user trusts a private CA
        driver = build_driver(url)
        try:
            await driver.apply(RED)
        finally:
            await driver.close()
    [post] = secure.posts
    assert post.headers["authorization"] == "Basic " + base64.b64encode(b"lamp:pa@ss").decode()
    assert post.body == {**RED_BODY, "signal": None}


async def test_a_refused_token_is_a_driver_error_that_does_not_show_it(hook: FakeWebhook) -> None:
    driver = build_driver(hook_url(hook, token="wrong-token"))
    try:
        with pytest.raises(DriverError, match=r"refused our credentials \(HTTP 401\)") as caught:
            await driver.apply(RED)
    finally:
        await driver.close()
    assert "wrong-token" not in str(caught.value) and "token=****" in str(caught.value)


async def test_ifttt_fires_the_event_with_the_level_the_title_and_the_colour_and_none_when_it_ends(
        ifttt: FakeIfttt, service_factory: Callable[..., Service]) -> None:
    service = service_factory(f"lamps: {{{LAMP}: '{ifttt_url(ifttt)}'}}\n")
    async with service.running():
        alarm = send_911(service)
        await eventually(lambda: len(ifttt.posts) == 1)
        service.acknowledge(alarm, by="alice")
        await eventually(lambda: len(ifttt.posts) == 2)  # the one-way limit: a second later
    assert [(p.method, p.path) for p in ifttt.posts] == [("POST", f"/trigger/office_lamp/with/key/{IFTTT_KEY}")] * 2
    assert [p.body for p in ifttt.posts] == [{"value1": "911", "value2": "payments down", "value3": "#ff0000"},
                                            {"value1": "none", "value2": "", "value3": "off"}]


async def test_the_ifttt_key_never_reaches_messages_or_logs(ifttt: FakeIfttt, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "wrong-key-0123456789"
    driver = build_driver(ifttt_url(ifttt, key=wrong))
    try:
        with pytest.raises(DriverError, match=r"refused our credentials \(HTTP 401\)") as caught:
            await driver.apply(RED)
    finally:
        await driver.close()
    assert wrong not in caplog.text + str(caught.value)  # at every log level


@pytest.mark.parametrize("kind", ["webhook", "ifttt"])
async def test_a_burst_reaches_the_receiver_at_most_once_a_second_and_the_latest_wins(
        hook: FakeWebhook, ifttt: FakeIfttt, tmp_path: Path, kind: str) -> None:
    receiver, url = (hook, hook_url(hook)) if kind == "webhook" else (ifttt, ifttt_url(ifttt))
    colors = [f"#{i:02x}0000" for i in range(100)]
    async with running_lamp(build_driver(url), tmp_path) as lamp:
        await lamp.burst(colors)
        await eventually(lambda: receiver.posts and "#630000" in str(receiver.posts[-1].body))
    assert most_in_any_window([p.at for p in receiver.posts]) == 1
    assert len(receiver.posts) <= 3  # coalesced, never replayed


async def test_a_receiver_that_stops_answering_is_offline_then_gets_the_latest_state_when_back(
        hook: FakeWebhook, service_factory: Callable[..., Service], monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    service = service_factory(f"lamps: {{{LAMP}: '{hook_url(hook)}'}}\n")
    async with service.running():
        alarm = send_911(service)
        await eventually(lambda: len(hook.posts) == 1)
        hook.unplug()
        service.acknowledge(alarm, by="alice")
        await eventually(lambda: not service.lamps[LAMP].online)
        assert "did not answer within 0.5 s" in service.lamp_views()[0].error
        hook.plug()
        await eventually(lambda: service.lamps[LAMP].online and hook.posts[-1].body == OFF_BODY)
    assert offline_logs(caplog.records) == (1, 1)


async def test_a_second_alert_with_the_same_look_is_posted_again_with_its_own_title(
        hook: FakeWebhook, service_factory: Callable[..., Service]) -> None:
    service = service_factory(f"lamps: {{{LAMP}: '{hook_url(hook)}'}}\n")
    async with service.running():
        send_911(service)
        await eventually(lambda: len(hook.posts) == 1)
        service.submit(make_event("911", "checkout down", received_at=service.clock.now()))
        await eventually(lambda: len(hook.posts) == 2)
    assert [p.body["signal"]["title"] for p in hook.posts] == ["payments down", "checkout down"]
    assert hook.posts[0].body["color"] == hook.posts[1].body["color"] == "#ff0000"
