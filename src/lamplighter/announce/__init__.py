"""Outbound announce: when a level is shown, say so in chat.

A level's `announce:` lists where, each entry one of

    slack-app:#team                 the channel, posted by the Slack source's bot (chat.postMessage);
    slack-app:NAME/C0123ABCD        ... by the Slack source named NAME, when there are several
    ntfy://ntfy.sh/my-lamp          any Apprise URL: Slack webhooks, Discord, Telegram, ntfy, Matrix...

An announcement never holds up or breaks the event path: `Announcements.announce` starts
the posts and returns at once; a failure is logged with the URL's secrets hidden.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Protocol

from lamplighter.announce.text import Announcement, Picture, describe
from lamplighter.errors import ConfigError
from lamplighter.model import Event, Outcome, Receipt
from lamplighter.sources.base import Source

log = logging.getLogger(__name__)

SLACK_APP = "slack-app:"
CLOSE_TIMEOUT = 5.0  # seconds a stopping daemon waits for posts in flight


class Announcer(Protocol):
    """One place to announce to. `name` is safe to log (no secrets)."""

    name: str

    async def post(self, message: Announcement, signal_id: int | None) -> None:
        """Post a message about a signal; log a failure, never raise it."""


def build_announcer(url_or_spec: str, sources: Mapping[str, Source] | None = None) -> Announcer:
    """The announcer for an `announce:` entry; ConfigError says what is wrong (without secrets).

    `sources` (the service's sources by name) is needed for `slack-app:` entries only.
    """
    if url_or_spec.startswith(SLACK_APP):
        from lamplighter.announce.slack_app import slack_app_announcer

        return slack_app_announcer(url_or_spec.removeprefix(SLACK_APP), sources or {})
    from lamplighter.announce.apprise_url import AppriseAnnouncer

    return AppriseAnnouncer(url_or_spec)


class Announcements:
    """Every level's announcers (for `announce:`, or a level's fallback notifications), and the posts in flight."""

    def __init__(self, by_level: Mapping[str, Sequence[Announcer]]) -> None:
        self._by_level = {level: tuple(found) for level, found in by_level.items() if found}
        self._posts: set[asyncio.Task[None]] = set()

    @classmethod
    def build(cls, specs: Mapping[str, Sequence[str]], sources: Mapping[str, Source],
              field: str = "announce") -> Announcements:
        """From each level's list of entries; ConfigError names every bad entry as levels.NAME.FIELD.N."""
        by_level: dict[str, list[Announcer]] = {}
        problems: list[tuple[str, str]] = []
        for level, entries in specs.items():
            for index, spec in enumerate(entries):
                try:
                    by_level.setdefault(level, []).append(build_announcer(spec, sources))
                except ConfigError as exc:
                    problems += [(f"levels.{level}.{field}.{index}", message) for _, message in exc.problems]
        if problems:
            raise ConfigError(problems)
        return cls(by_level)

    def announce(self, event: Event, receipt: Receipt, where: str | None = None,
                 picture: Picture | None = None) -> None:
        """Start posting about an event that was shown (anything else is not news); returns at once.

        `where`: the words for where its signal is (announce/text.py `where_text`), if known;
        `picture`: gets its snapshot, for the channels that take images."""
        if receipt.outcome is Outcome.SHOWN:
            message = describe(event, receipt) if where is None else describe(event, receipt, where)
            self.post(event.level, replace(message, picture=picture), receipt.signal_id)

    def post(self, level: str, message: Announcement, signal_id: int | None) -> None:
        """Start posting `message` to the level's announcers; returns at once."""
        for announcer in self._by_level.get(level, ()):
            post = asyncio.create_task(announcer.post(message, signal_id), name=f"announce {announcer.name}")
            self._posts.add(post)
            post.add_done_callback(self._done)

    def _done(self, post: asyncio.Task[None]) -> None:
        self._posts.discard(post)
        if not post.cancelled() and post.exception() is not None:
            log.error("%s failed unexpectedly: %r", post.get_name(), post.exception())

    async def close(self) -> None:
        """Let the posts in flight finish (a few seconds at most), then cancel the rest."""
        if not self._posts:
            return
        _, late = await asyncio.wait(set(self._posts), timeout=CLOSE_TIMEOUT)
        for post in late:
            post.cancel()
        await asyncio.gather(*late, return_exceptions=True)
