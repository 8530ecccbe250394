"""A phone as the last resort: an Apprise URL under `sirens:` gets one urgent push per escalation.

Tested against a fake ntfy server on loopback that records each publish as ntfy receives it
(Apprise's ntfy plug-in posts JSON to the server's root, the priority in `X-Priority`).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp import web

from lamplighter.config import parse_config
from lamplighter.drivers.phone import PhoneSiren, build_siren, urgent
from lamplighter.model import make_event
from lamplighter.service import Service, validate
from tests.daemon import free_port
from tests.test_service import eventually

pytestmark = pytest.mark.real_time  # the pushes go to a real HTTP server, from Apprise's worker thread


class FakeNtfy:
    """Records every publish: the headers ntfy reads and the JSON body."""

    def __init__(self) -> None:
        self.port = free_port()
        self.published: list[dict[str, Any]] = []
        self.status = 200

    async def publish(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.published.append({"path": request.path, "priority": request.headers.get("X-Priority"), **body})
        return web.json_response({"id": "x", "event": "message", "topic": body.get("topic")}, status=self.status)


@contextlib.asynccontextmanager
async def fake_ntfy() -> AsyncIterator[FakeNtfy]:
    ntfy = FakeNtfy()
    app = web.Application()
    app.router.add_post("/{path:.*}", ntfy.publish)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", ntfy.port).start()
    try:
        yield ntfy
    finally:
        await runner.cleanup()


@pytest.mark.parametrize(("given", "sent"), [
    ("ntfy://127.0.0.1:8/alerts", "ntfy://127.0.0.1:8/alerts?priority=max"),
    ("ntfys://ntfy.sh/alerts?priority=high", "ntfys://ntfy.sh/alerts?priority=high"),  # the user's choice stands
    ("pover://USERKEY@APPTOKEN", "pover://USERKEY@APPTOKEN?priority=emergency"),
    ("tgram://123456789:ABCdefGHI/987654", "tgram://123456789:ABCdefGHI/987654"),  # Telegram has no priority
])
def test_a_push_is_sent_with_the_services_most_urgent_priority(given: str, sent: str) -> None:
    assert urgent(given) == sent


@pytest.mark.parametrize("url", ["ntfys://ntfy.sh/alerts", "pover://USERKEY@APPTOKEN",
                                 "tgram://123456789:ABCdefGHI/987654"])
def test_ntfy_pushover_and_telegram_are_sirens(url: str) -> None:
    assert isinstance(build_siren(url), PhoneSiren)


def test_check_accepts_a_phone_siren_and_names_a_url_that_is_neither(tmp_path: Any) -> None:
    good = parse_config(f"state_dir: {tmp_path}\nsirens: {{phone: 'ntfys://ntfy.sh/alerts'}}\n", env={})
    assert validate(good) == []
    bad = parse_config(f"state_dir: {tmp_path}\nsirens: {{phone: 'nosuch://x'}}\n", env={})
    [(place, message)] = validate(bad)
    assert place == "sirens.phone" and "nor a URL Apprise can push to" in message
    lamp = parse_config(f"state_dir: {tmp_path}\nlamps: {{desk: 'ntfys://ntfy.sh/alerts'}}\n", env={})
    assert [place for place, _ in validate(lamp)] == ["lamps.desk"]  # a phone is a siren, not a lamp


async def test_an_unacknowledged_911_pushes_once_to_the_phone_with_how_to_acknowledge(
        service_factory: Callable[..., Service]) -> None:
    async with fake_ntfy() as ntfy:
        service = service_factory(f"sirens: {{phone: 'ntfy://127.0.0.1:{ntfy.port}/lamp-alerts'}}\n"
                                  "levels: {'911': {escalate_after: 1s}}\n")
        async with service.running():
            alarm = service.submit(make_event("911", "payments down", received_at=service.clock.now(), sender="a"))
            await eventually(lambda: len(ntfy.published) == 1, timeout=6)
            [push] = ntfy.published
            assert push["priority"] == "max"
            assert push["topic"] == "lamp-alerts" and push["title"] == "911: payments down"
            assert push["message"].startswith("Not acknowledged for 1s.")
            assert f"lamplighter ack {alarm.id}" in push["message"] and "/lamp ack" in push["message"]

            other = service.submit(make_event("911", "db down", received_at=service.clock.now(), sender="b"))
            await eventually(lambda: len(ntfy.published) == 2, timeout=6)  # another escalation, another push
            assert ntfy.published[1]["title"] == "911: db down"
            service.acknowledge(other.id, by="alice")  # the first one escalates on the siren again: no new push
            await eventually(lambda: service.lamps["phone"].showing is not None
                             and service.lamps["phone"].showing.event_id == alarm.id)
            service.acknowledge(alarm.id, by="alice")
            await eventually(lambda: service.lamps["phone"].showing is None)
        assert len(ntfy.published) == 2


async def test_a_failed_push_is_tried_again(service_factory: Callable[..., Service]) -> None:
    async with fake_ntfy() as ntfy:
        ntfy.status = 500
        service = service_factory(f"sirens: {{phone: 'ntfy://127.0.0.1:{ntfy.port}/lamp-alerts'}}\n"
                                  "levels: {'911': {escalate_after: 0.2s}}\n")
        async with service.running():
            service.submit(make_event("911", "payments down", received_at=service.clock.now()))
            await eventually(lambda: len(ntfy.published) >= 1, timeout=6)
            await eventually(lambda: not service.lamps["phone"].online, timeout=3)
            ntfy.status = 200
            count = len(ntfy.published)
            await eventually(lambda: len(ntfy.published) == count + 1, timeout=10)
            await eventually(lambda: service.lamps["phone"].online)
