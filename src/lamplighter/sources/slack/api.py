"""The few Slack Web API methods Lamplighter calls with the bot token, and how their failures read.

chat.postMessage posts announcements and thread replies; usergroups.users.list tells who is
in a user group. A failure is logged with Slack's error code (never the token) and the
caller decides what it means: an announcement is skipped, a permission check says why.
"""

from __future__ import annotations

import logging

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

log = logging.getLogger(__name__)

API_ERRORS = (SlackClientError, aiohttp.ClientError, TimeoutError)
"""What a Web API call raises when Slack says no or cannot be reached."""

REQUEST_TIMEOUT = 10  # seconds for one Web API call (slack_sdk's default is 30)


def describe(exc: BaseException) -> str:
    """Slack's error code (`invalid_auth`, `channel_not_found`), else the network problem."""
    if isinstance(exc, SlackApiError):
        return f"Slack said {exc.response.get('error', 'no')}"
    if isinstance(exc, TimeoutError):
        return "Slack did not answer in time"
    return f"cannot reach Slack ({type(exc).__name__}: {exc})"


class SlackApi:
    """A bot-token client for one workspace; `base_url` points elsewhere only for a proxy or a test."""

    def __init__(self, bot_token: str, base_url: str) -> None:
        self.client = AsyncWebClient(token=bot_token, base_url=base_url, timeout=REQUEST_TIMEOUT)

    async def post(self, channel: str, text: str, thread_ts: str | None = None) -> str | None:
        """Post a message; its `ts` (the id to reply in its thread), or None when Slack refused (logged)."""
        try:
            response = await self.client.chat_postMessage(channel=channel, text=text, thread_ts=thread_ts,
                                                          unfurl_links=False, unfurl_media=False)
        except API_ERRORS as exc:
            log.warning("could not post to Slack channel %s: %s", channel, describe(exc))
            return None
        return str(response.get("ts", "")) or None

    async def group_members(self, group: str) -> frozenset[str]:
        """The user ids in a user group; raises one of API_ERRORS."""
        response = await self.client.usergroups_users_list(usergroup=group)
        return frozenset(str(user) for user in response.get("users") or ())
