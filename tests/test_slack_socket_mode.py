"""The Slack source over Socket Mode, against Slack's wire protocol played by tests/peers/fake_slack.py.

The real slack_bolt and slack_sdk client ask the fake Web API for a websocket URL with the
app token, receive `hello`, then envelopes as Slack sends them, and must acknowledge each on
the socket (Slack gives 3 s). Acknowledgement times are printed, never asserted.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest

from lamplighter.model import LampState
from lamplighter.service import Service
from lamplighter.sources.slack import SlackSource, socket_mode
from tests.daemon import TOKEN, Daemon
from tests.peers.fake_slack import APP_TOKEN, BOT_ID, BOT_TOKEN, BOT_USER, FakeSlack
from tests.test_service import eventually, state

RED = LampState(on=True, color="#ff0000")
YELLOW = LampState(on=True, color="#ffd000")
Start = Callable[..., Awaitable[Service]]


def slack_yaml(slack: FakeSlack, app_token: str = APP_TOKEN, extra: str = "") -> str:
    return (f"sources:\n  - type: slack\n    app_token: {app_token}\n    bot_token: {BOT_TOKEN}\n"
            f"    api_url: {slack.api_url}\n{extra}")


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as fake:
        yield fake


def source(service: Service) -> SlackSource:
    found = service.sources["slack"]
    assert isinstance(found, SlackSource)
    return found


async def test_a_slash_command_lights_the_lamp_and_its_acknowledgement_carries_the_reply(
        running: Start, slack: FakeSlack) -> None:
    service = await running(slack_yaml(slack))
    assert not source(service).health.connected
    await slack.connected()
    await eventually(lambda: source(service).health.connected)

    ack = await slack.slash_command(text="payments API returns 500 for everyone")
    payload = ack["payload"]
    assert payload["response_type"] == "ephemeral"
    assert payload["text"].startswith("💡 On the lamp now: *911* “payments API returns 500 for everyone” (event 1, "
                                      "from <@U2147483697>)")
    await eventually(lambda: state(service) == RED)
    [stored] = service.store.recent_events(1)
    assert (stored.source, stored.sender, stored.labels) == (
        "slack", "jiwoo (U2147483697)", {"slack_user": "U2147483697", "slack_channel": "C2147483705",
                                         "slack_team": "T0001"})
    assert slack.calls[:2] == ["apps.connections.open", "auth.test"]  # Bolt learns its own bot id once
    print(f"\nSocket Mode /911 acknowledged in {max(slack.acks.values()) * 1000:.1f} ms (Slack allows 3000 ms)")


async def test_the_lamp_command_answers_over_the_socket_too(running: Start, slack: FakeSlack) -> None:
    service = await running(slack_yaml(slack))
    await slack.connected()
    await slack.slash_command(command="/912", text="printer on fire")
    await eventually(lambda: state(service) == YELLOW)
    ack = await slack.slash_command(command="/lamp", text="ack")
    assert ack["payload"] == {"response_type": "in_channel", "text": "✅ <@U2147483697> acknowledged *912* "
                                                                     "“printer on fire” (event 1)."}
    await eventually(lambda: not state(service).on)


async def test_watched_channel_messages_become_events_and_our_own_posts_never_do(
        running: Start, slack: FakeSlack) -> None:
    watch = ("    watch:\n      - {channel: C0CIBUILDS, match: 'Build (?P<builder>\\S+) failed', level: '912',\n"
             "         title: '{builder} failed', key: '{builder}', resolve: 'Build (?P<builder>\\S+) passed'}\n")
    service = await running(slack_yaml(slack, extra=watch))
    await slack.connected()
    await slack.message_event(channel="C0OTHER", text="Build nightly failed")  # not a watched channel
    await slack.message_event(channel="C0CIBUILDS", user=BOT_USER, bot_id=BOT_ID, subtype="bot_message",
                              text="Build nightly failed")  # our own announcement, echoed back by Slack
    ack = await slack.message_event(channel="C0CIBUILDS", subtype="bot_message", bot_id="B0CIBOT", user=None,
                                    text="", attachments=[{"fallback": "Build nightly failed at step test"}])
    assert set(ack) == {"envelope_id"}  # events are acknowledged without a payload
    await eventually(lambda: service.store.count_events() == 1)
    [stored] = service.store.recent_events(1)
    assert (stored.level, stored.title, stored.key, stored.sender, stored.outcome) == (
        "912", "nightly failed", "nightly", "B0CIBOT", "shown")
    await slack.message_event(channel="C0CIBUILDS", text="Build nightly passed")
    await eventually(lambda: service.store.count_events() == 2)
    assert service.store.recent_events(1)[0].outcome == "resolved" and service.signals == {}


async def test_when_slack_asks_the_client_reconnects_and_commands_still_work(running: Start, slack: FakeSlack) -> None:
    service = await running(slack_yaml(slack))
    await slack.connected()
    await slack.ask_to_reconnect()
    await slack.connected(count=2)
    await asyncio.sleep(0.2)  # the client swaps to the new socket
    ack = await slack.slash_command(text="after the reconnect")
    assert ack["payload"]["text"].startswith("💡 On the lamp now")
    assert source(service).health.connected


async def test_a_url_that_will_not_connect_is_given_up_for_a_new_one(
        running: Start, slack: FakeSlack, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket_mode, "STUCK_AFTER", 0.5)
    slack.expired_urls = 1  # its handshake fails; slack_sdk alone would retry that URL forever
    service = await running(slack_yaml(slack))
    await slack.connected(count=2)
    await eventually(lambda: source(service).health.connected, timeout=10)
    assert (await slack.slash_command(text="still reachable"))["payload"]["text"].startswith("💡")


async def test_a_wrong_app_token_is_reported_as_the_sources_health(running: Start, slack: FakeSlack) -> None:
    service = await running(slack_yaml(slack, app_token="xapp-1-A123456-0000-revoked"))
    await eventually(lambda: "invalid_auth" in source(service).health.error)
    assert source(service).health.error == "Slack did not open Socket Mode: Slack said invalid_auth"
    assert not source(service).health.connected


async def test_a_real_daemon_turns_red_on_a_911_over_socket_mode_with_secrets_from_the_environment(
        daemon: Callable[..., Daemon], slack: FakeSlack, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_APP_TOKEN", APP_TOKEN)
    monkeypatch.setenv("SLACK_BOT_TOKEN", BOT_TOKEN)
    config = ("sources:\n  - {type: slack, app_token: '${SLACK_APP_TOKEN}', bot_token: '${SLACK_BOT_TOKEN}',"
              f" api_url: '{slack.api_url}'}}\n")
    running = await asyncio.to_thread(daemon, config)  # the fake Slack keeps serving while it starts
    await slack.connected()
    ack = await slack.slash_command(text="payments down")
    assert ack["payload"]["text"].startswith("💡 On the lamp now: *911* “payments down”")
    async with httpx.AsyncClient(base_url=running.url, headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        async def lamp() -> dict[str, Any]:
            [view] = (await client.get("/api/lamps")).json()
            return dict(view)

        deadline = asyncio.get_running_loop().time() + 10
        while (await lamp())["state"]["color"] != "#ff0000":
            assert asyncio.get_running_loop().time() < deadline, "the lamp did not turn red"
            await asyncio.sleep(0.02)
        sources = (await client.get("/api/sources")).json()
    assert sources == [{"name": "slack", "type": "slack", "connected": True, "error": None,
                        "last_event_at": sources[0]["last_event_at"], "refused": 0, "last_refusal": None}]
    assert APP_TOKEN not in running.log_path.read_text() and BOT_TOKEN not in running.log_path.read_text()
    print(f"\nreal daemon: Socket Mode /911 acknowledged in {max(slack.acks.values()) * 1000:.1f} ms")
