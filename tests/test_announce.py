"""Outbound announce: to any Apprise URL (here `json://` to a local HTTP server) and to Slack via the app.

Apprise really posts over HTTP (in a worker thread); the Slack app really calls
chat.postMessage on the fake Slack Web API. Failures are logged with secrets hidden and are
never raised.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from lamplighter.announce import Announcements, build_announcer
from lamplighter.announce.text import describe
from lamplighter.errors import ConfigError
from lamplighter.model import Event, Outcome, Receipt, make_event
from lamplighter.service import Service
from lamplighter.sources import build_sources
from lamplighter.sources.slack import SlackSource
from tests.conftest import START, FakeClock
from tests.daemon import free_port
from tests.peers.fake_slack import BOT_TOKEN, SIGNING_SECRET, FakeSlack, form_body, signed_headers
from tests.peers.notify_receiver import Receiver, notification_receiver
from tests.test_service import eventually

EVENT = make_event("912", "printer on fire", received_at=START, sender="jiwoo (U2147483697)", source="slack",
                   body="sent with /912 in #ops").with_id(7)
SHOWN = Receipt(7, Outcome.SHOWN, (), None, 7)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with notification_receiver() as found:
        yield found


async def test_an_apprise_url_gets_the_level_title_and_who_sent_it(receiver: Receiver) -> None:
    announcer = build_announcer(f"json://bot:hunter2@127.0.0.1:{receiver.port}/lamp")
    assert announcer.name.startswith(f"json://bot:****@127.0.0.1:{receiver.port}/lamp")
    await announcer.post(describe(EVENT, SHOWN), SHOWN.signal_id)
    [posted] = receiver.received
    assert (posted["path"], posted["title"]) == ("/lamp", "912: printer on fire")
    assert posted["message"] == ("On the lamp now from jiwoo (U2147483697) via slack (event 7).\n"
                                 "sent with /912 in #ops")
    assert posted["auth"] is not None and posted["auth"].startswith("Basic ")


@pytest.mark.parametrize("failure", ["refused", "server error"])
async def test_a_failed_post_is_logged_without_its_secret_and_never_raised(
        receiver: Receiver, failure: str, caplog: pytest.LogCaptureFixture) -> None:
    receiver.status = 500
    port = free_port() if failure == "refused" else receiver.port
    announcer = build_announcer(f"json://bot:hunter2@127.0.0.1:{port}/lamp")
    await announcer.post(describe(EVENT, SHOWN), SHOWN.signal_id)
    ours = [r.getMessage() for r in caplog.records if r.name.startswith("lamplighter")]
    assert ours == [f"announce to {announcer.name} failed (Apprise logged why)"]
    assert "hunter2" not in caplog.text


def test_a_bad_entry_is_refused_with_what_is_wrong() -> None:
    with pytest.raises(ConfigError, match=r"not a URL Apprise can post to \(scheme 'nope'\)"):
        build_announcer("nope://x:secret@host")
    with pytest.raises(ConfigError, match="slack-app: needs a source of type slack under sources:"):
        build_announcer("slack-app:#team", {})


def test_slack_app_entries_name_a_slack_source_that_can_post() -> None:
    sources = build_sources([{"type": "slack", "name": "work", "signing_secret": "s", "bot_token": BOT_TOKEN},
                             {"type": "slack", "name": "home", "signing_secret": "s"}], FakeClock())

    def problem(spec: str) -> str:
        with pytest.raises(ConfigError) as caught:
            build_announcer(spec, sources)
        return str(caught.value)

    assert build_announcer("slack-app:work/#team", sources).name == "slack-app:work/#team"
    assert problem("slack-app:#team") == "several Slack sources (home, work): write slack-app:NAME/#channel"
    assert problem("slack-app:office/#team") == "no Slack source named 'office' (there is home, work)"
    assert problem("slack-app:home/#team") == "Slack source 'home' has no bot_token to post with"
    assert problem("slack-app:work/") == "say which channel: slack-app:#team or slack-app:C0123ABCD"


def test_announcements_are_checked_per_level_entry() -> None:
    with pytest.raises(ConfigError) as caught:
        Announcements.build({"911": ["json://127.0.0.1/ok", "nope://x"], "912": ["slack-app:#team"]}, {})
    assert [path for path, _ in caught.value.problems] == ["levels.911.announce.1", "levels.912.announce.0"]


async def test_only_shown_events_are_announced_and_close_waits_for_posts_in_flight(receiver: Receiver) -> None:
    announcements = Announcements.build({"912": [f"json://127.0.0.1:{receiver.port}/a"]}, {})
    for outcome in (Outcome.THROTTLED, Outcome.DEDUPLICATED, Outcome.QUIET):
        announcements.announce(EVENT, Receipt(8, outcome, (), None, None))
    announcements.announce(make_event("911", "other level", received_at=START), SHOWN)
    announcements.announce(EVENT, SHOWN)  # returns at once; the post runs on
    await announcements.close()
    assert [posted["title"] for posted in receiver.received] == ["912: printer on fire"]


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as fake:
        yield fake


async def test_the_slack_app_posts_to_the_channel_and_ack_replies_in_that_thread(
        running: Callable[..., Awaitable[Service]], slack: FakeSlack, clock: FakeClock) -> None:
    service = await running(f"sources:\n  - {{type: slack, signing_secret: {SIGNING_SECRET}, bot_token: {BOT_TOKEN},"
                            f" api_url: '{slack.api_url}'}}\n")
    source = service.sources["slack"]
    assert isinstance(source, SlackSource)
    announcements = Announcements.build({"911": ["slack-app:#team"]}, service.sources)
    triggers = itertools.count()

    async def command(**fields: str) -> dict[str, Any]:
        body = form_body(trigger_id=f"t{next(triggers)}", **fields)
        headers = signed_headers(body, clock.now())
        source.authenticate(headers, body)
        return (await source.answer(headers, body, clock.now(), service.submit))[1]

    await command(text="payments down <!channel>")
    [stored] = service.store.recent_events(1)
    event = Event(**{k: getattr(stored, k) for k in ("level", "title", "sender", "source", "body")}, id=stored.id)
    announcements.announce(event, Receipt(stored.id, Outcome.SHOWN, (), None, stored.id))
    await announcements.close()
    [posted] = slack.posted
    assert posted["channel"] == "#team"
    assert posted["text"] == ("*911: payments down &lt;!channel&gt;*\nOn the lamp now from jiwoo (U2147483697) via "
                              "slack (event 1).\nsent with /911 in #ops")

    await command(command="/lamp", text="ack")
    await eventually(lambda: len(slack.posted) == 2)
    thread = slack.posted[1]
    assert (thread["channel"], thread["text"]) == ("#team", "✅ Acknowledged by <@U2147483697>.")
    assert thread["thread_ts"] == posted["ts"]


async def test_a_level_with_announce_posts_when_an_event_is_shown_through_the_service(
        receiver: Receiver, running: Callable[..., Any]) -> None:
    service = await running(f"levels: {{912: {{announce: ['json://127.0.0.1:{receiver.port}/team']}}}}\n")
    service.submit(make_event("912", "printer on fire", received_at=service.clock.now(), sender="ta-bob"))
    service.submit(make_event("911", "payments down", received_at=service.clock.now()))  # 911 announces nothing
    await eventually(lambda: receiver.received)
    await asyncio.sleep(0.1)
    assert [(p["path"], p["title"]) for p in receiver.received] == [("/team", "912: printer on fire")]
