"""Slash commands over HTTP: signed requests built from the captured sample, answered by `SlackSource.answer`.

`answer` is what POST /hooks/NAME calls once the daemon's webhook route has the answer hook
(see the report); here each request goes through `authenticate` and `answer` exactly as the
route would, under a fake clock. Group membership comes from the fake Slack Web API.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from lamplighter.errors import StoreError
from lamplighter.model import LampState
from lamplighter.service import Service
from lamplighter.sources.slack import SlackSource
from tests.conftest import START, FakeClock
from tests.peers.fake_slack import BOT_TOKEN, SIGNING_SECRET, FakeSlack, form_body, signed_headers
from tests.test_service import eventually, state

RED = LampState(on=True, color="#ff0000")
YELLOW = LampState(on=True, color="#ffd000")
JIWOO = "U2147483697"  # the sample's user
BOSS = "U0BOSS"
STAFF = "S0STAFF"
Start = Callable[..., Awaitable[Service]]
Send = Callable[..., Awaitable[dict[str, Any]]]


def http_yaml(extra: str = "", bot: str = "") -> str:
    return f"sources:\n  - type: slack\n    signing_secret: {SIGNING_SECRET}\n{bot}{extra}"


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as fake:
        yield fake


@pytest.fixture
def send(clock: FakeClock) -> Callable[[Service], Send]:
    """A slash command as Slack posts it: authenticated and answered as the webhook route does."""
    triggers = itertools.count(1)

    def bind(service: Service) -> Send:
        async def command(**fields: str) -> dict[str, Any]:
            source = service.sources["slack"]
            assert isinstance(source, SlackSource)
            body = form_body(**{"trigger_id": f"13345224609.{next(triggers)}", **fields})  # unique, as Slack's are
            headers = signed_headers(body, clock.now())
            source.authenticate(headers, body)
            status, reply = await source.answer(headers, body, clock.now(), service.submit)
            assert status == 200 and set(reply) == {"response_type", "text"}
            return reply
        return command
    return bind


async def test_911_lights_the_lamp_and_tells_the_sender(running: Start, send: Callable[[Service], Send]) -> None:
    service = await running(http_yaml())
    reply = await send(service)(text="payments API returns 500 for everyone")
    assert reply == {"response_type": "ephemeral", "text": "💡 On the lamp now: *911* “payments API returns 500 for "
                                                           "everyone” (event 1, from <@U2147483697>)."}
    await eventually(lambda: state(service) == RED)
    assert service.store.event(1).sender == "jiwoo (U2147483697)"


async def test_with_locale_ko_the_sender_is_told_in_korean(running: Start, send: Callable[[Service], Send]) -> None:
    service = await running(http_yaml() + "locale: ko\n")
    reply = await send(service)(text="결제 API 500")
    assert reply == {"response_type": "ephemeral",
                     "text": "💡 지금 램프에 표시 중: *911* “결제 API 500” (이벤트 1, 보낸 사람 <@U2147483697>)."}
    ack = await send(service)(command="/lamp", text="ack 1")
    assert ack["text"] == "✅ <@U2147483697> 님이 *911* “결제 API 500” (이벤트 1)을(를) 확인했습니다."


async def test_a_command_set_to_reply_in_channel_says_it_there_but_refusals_stay_private(
        running: Start, send: Callable[[Service], Send]) -> None:
    service = await running(http_yaml("    commands:\n      /911: {level: 911, reply: in_channel, allow: [U0BOSS]}\n"))
    shown = await send(service)(text="down", user_id=BOSS, user_name="boss")
    assert shown["response_type"] == "in_channel" and "<@U0BOSS>" in shown["text"]
    refused = await send(service)(text="me too")
    assert refused == {"response_type": "ephemeral", "text": "🚫 Not allowed: you may not send 911 (allowed: "
                                                             "<@U0BOSS>). Nothing was done."}
    assert service.store.count_events() == 1


async def test_an_empty_or_unknown_command_sends_nothing(running: Start, send: Callable[[Service], Send]) -> None:
    service = await running(http_yaml())
    assert (await send(service)(text="  "))["text"] == ("Say what is wrong, e.g. `/911 payments API returns 500`. "
                                                       "Nothing was sent.")
    assert "has no command /913" in (await send(service)(command="/913", text="x"))["text"]
    assert service.store.count_events() == 0


async def test_text_from_a_person_cannot_ping_the_channel(running: Start, send: Callable[[Service], Send]) -> None:
    service = await running(http_yaml())
    reply = await send(service)(text="&lt;!channel&gt; db &amp; api down")  # as Slack escapes it
    assert service.store.event(1).title == "<!channel> db & api down"
    assert "“&lt;!channel&gt; db &amp; api down”" in reply["text"]


async def test_user_groups_come_from_slack_and_are_remembered(
        running: Start, send: Callable[[Service], Send], slack: FakeSlack, clock: FakeClock) -> None:
    slack.groups[STAFF] = [BOSS]
    bot = f"    bot_token: {BOT_TOKEN}\n    api_url: {slack.api_url}\n"
    service = await running(http_yaml("    commands:\n      /911: {level: 911, allow: [S0STAFF]}\n"
                                      "      /912: {level: 912}\n", bot))
    refused = await send(service)(text="down")
    assert refused["text"].startswith("🚫 Not allowed: you may not send 911 (allowed: <!subteam^S0STAFF>)")
    assert (await send(service)(text="down", user_id=BOSS))["text"].startswith("💡 On the lamp now")
    queued = (await send(service)(command="/912", text="anyone may"))["text"]  # the 911 covers the lamp
    assert queued.startswith("⏳ Queued behind a 911 (“down”), shows when it ends: *912* “anyone may”")
    assert slack.calls == ["usergroups.users.list"]  # asked once, remembered for five minutes

    clock.advance(301)
    slack.group_error = "missing_scope"
    still = await send(service)(text="again", user_id=BOSS)
    assert still["text"].startswith("💡")  # Slack failed: the members known before still count
    refused = await send(service)(text="me", user_id="U0NEW", user_name="new")
    assert refused["text"].startswith("🚫") and "Slack said missing_scope" not in refused["text"]


async def test_a_group_slack_cannot_list_refuses_with_the_reason(
        running: Start, send: Callable[[Service], Send], slack: FakeSlack) -> None:
    slack.group_error = "missing_scope"
    bot = f"    bot_token: {BOT_TOKEN}\n    api_url: {slack.api_url}\n"
    service = await running(http_yaml("    lamp: {allow: {ack: [S0STAFF]}}\n", bot))
    reply = await send(service)(command="/lamp", text="ack")
    assert reply["text"] == ("🚫 Not allowed: you may not use /lamp ack (allowed: <!subteam^S0STAFF>). Nothing was "
                             "done. Could not list user group S0STAFF: Slack said missing_scope.")


async def test_a_slow_slack_cannot_make_the_reply_late(
        running: Start, send: Callable[[Service], Send], slack: FakeSlack) -> None:
    slack.groups[STAFF], slack.delay = [JIWOO], 2.0  # longer than the 1.5 s a lookup may take
    bot = f"    bot_token: {BOT_TOKEN}\n    api_url: {slack.api_url}\n"
    service = await running(http_yaml("    commands:\n      /911: {level: 911, allow: [S0STAFF]}\n", bot))
    began = time.perf_counter()
    reply = await send(service)(text="down")
    took = time.perf_counter() - began
    assert reply["text"].endswith("Could not list user group S0STAFF: Slack did not answer in time.")
    print(f"\n/911 answered in {took * 1000:.0f} ms while Slack's user group lookup hung (Slack allows 3000 ms)")


async def test_lamp_ack_ends_what_the_lamps_show_and_says_who_in_the_channel(
        running: Start, send: Callable[[Service], Send]) -> None:
    service = await running(http_yaml())
    command = send(service)
    await command(text="payments down")
    await eventually(lambda: state(service) == RED)
    acked = await command(command="/lamp", text="ack")
    assert acked == {"response_type": "in_channel",
                     "text": "✅ <@U2147483697> acknowledged *911* “payments down” (event 1)."}
    await eventually(lambda: not state(service).on)
    assert service.store.signal_end(1)[1] == "acknowledged by jiwoo (U2147483697)"  # type: ignore[index]
    assert (await command(command="/lamp", text="ack"))["text"] == "Nothing is on the lamps to acknowledge."
    assert (await command(command="/lamp", text="ack 1"))["text"] == ("Event 1 is not on any lamp (it ended, or "
                                                                      "was never shown).")
    assert (await command(command="/lamp", text="ack 99"))["text"] == "No event 99 in the journal."


async def test_lamp_status_and_why_explain_what_is_shown(running: Start, send: Callable[[Service], Send]) -> None:
    service = await running(http_yaml())
    command = send(service)
    assert (await command(command="/lamp", text="status"))["text"] == "• lamp *desk*: nothing to show"
    assert (await command(command="/lamp", text="why"))["text"] == "Nothing is on the lamps to explain."
    await command(command="/912", text="printer on fire")
    await eventually(lambda: state(service) == YELLOW)
    status = (await command(command="/lamp", text="status"))["text"]
    assert re.fullmatch(r"• lamp \*desk\*: \*912\* “printer on fire” since <!date\^1800000000\^\{time_secs\}\|"
                        r"08:00:00 UTC> \(event 1\)", status)
    why = (await command(command="/lamp", text="why"))["text"]
    assert why.startswith("Event 1: *912* “printer on fire” from jiwoo (U2147483697) via slack, received ")
    assert why.endswith(": *shown*")
    assert (await command(command="/lamp", text="why 1"))["text"] == why
    assert (await command(command="/lamp", text="why 7"))["text"] == "No event 7 in the journal."


async def test_lamp_snooze_quiets_new_events_and_off_ends_it(
        running: Start, send: Callable[[Service], Send], clock: FakeClock) -> None:
    service = await running(http_yaml())
    command = send(service)
    snoozed = await command(command="/lamp", text="snooze 30m")
    assert snoozed["response_type"] == "in_channel"
    assert snoozed["text"].startswith("😴 <@U2147483697> snoozed the lamps for 30m, until <!date^1800001800^")
    quiet = await command(command="/912", text="printer on fire")
    assert quiet["text"].startswith("🌙 Not shown: quiet time: *912* “printer on fire” (event 1, from <@U2147483697>)."
                                    " Snoozed by jiwoo (U2147483697) until ")
    assert (await command(command="/911", text="payments down"))["text"].startswith("💡")  # 911 bypasses
    off = await command(command="/lamp", text="snooze off")
    assert off["text"] == "⏰ <@U2147483697> ended the snooze: the lamps show what is active."
    for wrong in ("snooze", "snooze soon", "snooze 8d"):
        assert "Say how long, e.g. `/lamp snooze 30m`" in (await command(command="/lamp", text=wrong))["text"]


async def test_lamp_test_sends_the_test_level_and_help_lists_the_verbs(
        running: Start, send: Callable[[Service], Send]) -> None:
    service = await running(http_yaml())
    command = send(service)
    tested = await command(command="/lamp", text="test")
    assert tested["text"].startswith("💡 On the lamp now: *912* “test from jiwoo”")
    await eventually(lambda: state(service) == YELLOW)
    usage = (await command(command="/lamp", text="dance"))["text"]
    assert usage == ("Usage: `/lamp ack [EVENT]` · `/lamp status` · `/lamp why [EVENT]` · `/lamp snooze 30m|off` · "
                     "`/lamp test`")


async def test_a_journal_failure_is_told_and_nothing_is_shown(
        running: Start, send: Callable[[Service], Send], monkeypatch: pytest.MonkeyPatch) -> None:
    service = await running(http_yaml())

    def broken(*args: Any, **kwargs: Any) -> None:
        raise StoreError("disk I/O error")

    monkeypatch.setattr(service.store, "record_event", broken)
    reply = await send(service)(text="payments down")
    assert reply["text"] == ("⚠️ Not accepted, nothing was shown: disk I/O error. Try again, or reach them another "
                             "way.")
    assert service.signals == {}


async def test_a_storm_of_912_is_throttled_truthfully_and_the_lamp_barely_moves(
        running: Start, send: Callable[[Service], Send], clock: FakeClock) -> None:
    """50 `/912` from one user in a minute under the default limits (per sender: 2 at once, then 1 per 30 s)."""
    service = await running(http_yaml())
    command = send(service)
    replies, took = [], []
    for number in range(50):
        began = time.perf_counter()
        replies.append(await command(command="/912", text=f"please look #{number}"))
        took.append(time.perf_counter() - began)
        await asyncio.sleep(0.005)  # the lamp task runs between requests, as it would between real ones
        clock.advance(1.2)
    await asyncio.sleep(0.2)  # generous: the lamp task catches up (in real time)

    stored = sorted(service.store.recent_events(50), key=lambda event: event.id)
    assert len(replies) == len(stored) == 50
    shown = [event.id for event in stored if event.outcome == "shown"]
    assert shown == [1, 2, 26]  # two at once, the third when a token is back, 30 s after the second took one
    for reply, event in zip(replies, stored, strict=True):
        assert reply["response_type"] == "ephemeral"
        assert f"(event {event.id}, from <@U2147483697>)" in reply["text"]
        if event.outcome == "shown":
            assert reply["text"].startswith("💡 On the lamp now: *912*")
        else:
            assert event.outcome == "throttled"
            next_token = int(START) + (30 if event.id < 26 else 60)  # when the sender's bucket has a token again
            assert reply["text"].startswith("⏳ Not shown: throttled: *912*")
            assert f"You may send again at <!date^{next_token}^" in reply["text"]
    applies = service.metrics.lamp_applies.labels("desk")._value.get()
    print(f"\nstorm: {len(shown)} shown, {applies:.0f} lamp change(s); each answered (verify + answer) in "
          f"{min(took) * 1000:.1f}-{max(took) * 1000:.1f} ms")
    assert 1 <= applies <= 2 * len(shown)  # at most on and off per shown event: not a disco

