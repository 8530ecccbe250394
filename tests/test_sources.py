"""The source plug-in point: settings checked with their path, webhooks mounted at /hooks/NAME."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from typing import Any

import httpx
import pytest

from lamplighter import sources as source_registry
from lamplighter.errors import AuthError, ConfigError, EventError
from lamplighter.model import Event, make_event
from lamplighter.service import Service
from lamplighter.sources import build_sources
from lamplighter.sources.base import SourceSettings, WebhookSource
from tests.conftest import FakeClock
from tests.serving import serving
from tests.test_service import eventually
from tests.virtual_time import LoopClock


def lamp_color(service: Service) -> str | None:
    state = service.lamps["desk"].actual
    return state.color if state and state.on else None


class EchoSettings(SourceSettings):
    token: str
    level: str = "912"


class EchoHook(WebhookSource):
    """A plug-in as a third party would write one: a token header, one event per JSON body."""

    source_type = "echo"
    Settings = EchoSettings

    def authenticate(self, headers: Mapping[str, str], body: bytes) -> None:
        assert isinstance(self.settings, EchoSettings)
        if headers.get("x-echo-token") != self.settings.token:
            raise AuthError("X-Echo-Token is missing or wrong")

    def parse(self, headers: Mapping[str, str], body: bytes, received_at: float) -> list[Event]:
        assert isinstance(self.settings, EchoSettings)
        try:
            title = json.loads(body)["text"]
        except (ValueError, KeyError, TypeError):
            raise EventError("text", "the body must be JSON with a text field") from None
        return [make_event(self.settings.level, title, received_at=received_at, source=self.name)]


@pytest.fixture(autouse=True)
def echo_installed(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setitem(source_registry.BUILT_IN, "echo", EchoHook)
    source_registry.source_types.cache_clear()
    yield
    source_registry.source_types.cache_clear()


def test_source_settings_are_checked_with_their_path() -> None:
    with pytest.raises(ConfigError) as caught:
        build_sources([{"type": "echo", "tokn": "x"}, {"type": "pigeon"}, {"type": "echo", "token": "a"},
                       {"type": "echo", "token": "b", "expect_every": "often"}], FakeClock())
    problems = dict(caught.value.problems)
    assert problems["sources.0.token"] == "Field required"
    assert problems["sources.0.tokn"] == "Extra inputs are not permitted"
    assert problems["sources.1.type"].startswith("unknown source type 'pigeon' (available: ")
    assert "echo" in problems["sources.1.type"]
    assert "not a duration" in problems["sources.3.expect_every"]


def test_two_sources_with_one_name_are_refused() -> None:
    with pytest.raises(ConfigError, match="a second source named 'echo'"):
        build_sources([{"type": "echo", "token": "a"}, {"type": "echo", "token": "b"}], FakeClock())
    named = build_sources([{"type": "echo", "token": "a"}, {"type": "echo", "token": "b", "name": "ci"}], FakeClock())
    assert set(named) == {"echo", "ci"}


@pytest.fixture
async def hook_api(service_factory: Callable[..., Service]) -> AsyncIterator[tuple[httpx.AsyncClient, Service]]:
    service = service_factory("sources:\n  - {type: echo, name: ci, token: s3cret}\n")
    async with serving(service, "api-token") as url, httpx.AsyncClient(base_url=url) as client:
        yield client, service


async def test_a_webhook_source_checks_its_own_token_and_stores_its_events(
        hook_api: tuple[httpx.AsyncClient, Service]) -> None:
    client, service = hook_api
    refused = await client.post("/hooks/ci", json={"text": "build failed"}, headers={"X-Echo-Token": "nope"})
    assert refused.status_code == 401 and refused.json()["error"] == "X-Echo-Token is missing or wrong"
    broken = await client.post("/hooks/ci", content=b"not json", headers={"X-Echo-Token": "s3cret"})
    assert broken.status_code == 422 and broken.json()["error"].startswith("text:")
    assert (await client.post("/hooks/nope", json={})).status_code == 401  # as a wrong token: names stay secret
    assert service.store.count_events() == 0

    accepted = await client.post("/hooks/ci", json={"text": "build failed"}, headers={"X-Echo-Token": "s3cret"})
    assert accepted.status_code == 202
    [receipt] = accepted.json()["events"]
    assert receipt["outcome"] == "shown"
    stored = service.store.event(receipt["id"])
    assert stored is not None and (stored.source, stored.level) == ("ci", "912")
    health = (await client.get("/api/sources", headers={"Authorization": "Bearer api-token"})).json()
    assert health == [{"name": "ci", "type": "echo", "connected": True, "error": None,
                       "last_event_at": stored.received_at, "refused": 0, "last_refusal": None}]


@pytest.mark.virtual_time
async def test_a_silent_source_turns_the_lamp_purple_until_it_speaks_again(
        running: Callable[..., Any], clock: LoopClock) -> None:
    service = await running("sources:\n  - {type: echo, name: watchdog-am, token: t, expect_every: 10m}\n")
    await asyncio.sleep(599.9)
    assert service.signals == {}
    await asyncio.sleep(0.2)
    [blind] = service.signals.values()
    assert (blind.level, blind.key, blind.title) == (
        "blind", "blind:watchdog-am", "watchdog-am has been silent for 10m (expected every 10m)")
    await eventually(lambda: lamp_color(service) == "#8000ff")
    service.submit(make_event("912", "Watchdog", received_at=clock.now(), source="watchdog-am", key="wd"))
    assert [s.level for s in service.signals.values()] == ["912"]  # blind resolved by the source speaking
    stored = service.store.recent_events(3)
    assert [(e.source, e.level, e.outcome) for e in stored] == [
        ("watchdog", "blind", "resolved"), ("watchdog-am", "912", "shown"), ("watchdog", "blind", "shown")]


@pytest.mark.virtual_time
async def test_a_source_disconnected_for_a_minute_is_blind_until_it_reconnects(running: Callable[..., Any]) -> None:
    service = await running("sources:\n  - {type: echo, name: frigate, token: t}\n")
    source = service.sources["frigate"]
    source.mark_disconnected("connection refused")
    await asyncio.sleep(59.9)
    assert service.signals == {}
    await asyncio.sleep(0.2)
    assert [s.title for s in service.signals.values()] == ["frigate has been disconnected for 1m"]
    source.mark_connected()
    await asyncio.sleep(0.01)
    assert service.signals == {}


def test_the_names_of_lamplighters_own_sources_are_reserved() -> None:
    with pytest.raises(ConfigError, match="the name 'watchdog' is Lamplighter's own"):
        build_sources([{"type": "echo", "token": "a", "name": "watchdog"}], FakeClock())


async def test_a_source_silent_since_before_a_restart_is_blind_at_once(
        service_factory: Callable[..., Service], clock: FakeClock) -> None:
    config = "sources:\n  - {type: echo, name: am, token: t, expect_every: 5m}\n"
    first = service_factory(config)
    await first.start()
    first.submit(make_event("912", "Watchdog", received_at=clock.now(), source="am", key="wd"))
    await first.stop()
    clock.advance(3600)
    second = service_factory(config)
    await second.start()
    try:
        assert [s.title for s in second.signals.values()] == ["am has been silent for 1h (expected every 5m)"]
    finally:
        await second.stop()
