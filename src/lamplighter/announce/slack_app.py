"""Announce in a Slack channel through a configured Slack source's bot (chat.postMessage).

The source remembers the message, so that `/lamp ack` later says in its thread who
acknowledged. `slack-app:#team` uses the only Slack source; `slack-app:NAME/#team` names one.
"""

from __future__ import annotations

from collections.abc import Mapping

from lamplighter.announce.text import Announcement
from lamplighter.errors import ConfigError
from lamplighter.sources.base import Source
from lamplighter.sources.slack import SlackSource
from lamplighter.sources.slack.replies import escape


class SlackAppAnnouncer:
    """Posts to one channel with one Slack source's bot token."""

    def __init__(self, app: SlackSource, channel: str) -> None:
        self.name = f"slack-app:{app.name}/{channel}"
        self._app = app
        self._channel = channel

    async def post(self, message: Announcement, signal_id: int | None) -> None:
        text = f"*{escape(message.title)}*\n{escape(message.body)}"
        await self._app.post_announcement(self._channel, text, signal_id)


def slack_app_announcer(target: str, sources: Mapping[str, Source]) -> SlackAppAnnouncer:
    """From `#channel` or `NAME/#channel`; ConfigError when no such Slack source can post."""
    name, _, channel = target.rpartition("/")
    apps = {found.name: found for found in sources.values() if isinstance(found, SlackSource)}
    if not channel:
        raise ConfigError([("", "say which channel: slack-app:#team or slack-app:C0123ABCD")])
    app = apps.get(name) if name else _only(apps)
    if app is None:
        raise ConfigError([("", _which_app_problem(name, sorted(apps)))])
    if app.api is None:
        raise ConfigError([("", f"Slack source {app.name!r} has no bot_token to post with")])
    return SlackAppAnnouncer(app, channel)


def _only(apps: Mapping[str, SlackSource]) -> SlackSource | None:
    return next(iter(apps.values())) if len(apps) == 1 else None


def _which_app_problem(name: str, names: list[str]) -> str:
    if not names:
        return "slack-app: needs a source of type slack under sources:"
    if name:
        return f"no Slack source named {name!r} (there is {', '.join(names)})"
    return f"several Slack sources ({', '.join(names)}): write slack-app:NAME/#channel"
