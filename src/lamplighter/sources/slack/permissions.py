"""Who may send a level or use `ack`, `snooze` and `test`: Slack users, user groups, or everyone.

A user group's members come from Slack (usergroups.users.list) and are kept for five
minutes. A lookup has 1.5 s at most, because the whole answer must reach Slack within
3 s; when Slack cannot be asked, the last known members are used, and with none the
request is refused with the reason (never silently allowed).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from lamplighter.model import Clock
from lamplighter.sources.slack.api import API_ERRORS, describe
from lamplighter.sources.slack.settings import EVERYONE

log = logging.getLogger(__name__)

GROUP_TTL = 300.0
LOOKUP_TIMEOUT = 1.5

FetchMembers = Callable[[str], Awaitable[frozenset[str]]]


@dataclass(frozen=True)
class Decision:
    """May this user do it; if not, the problems met on the way (a group Slack would not list)."""

    allowed: bool
    problems: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Known:
    members: frozenset[str]
    until: float


class GroupMembers:
    """User group members by group id, fetched on demand and remembered for GROUP_TTL."""

    def __init__(self, fetch: FetchMembers, clock: Clock) -> None:
        self._fetch = fetch
        self._clock = clock
        self._known: dict[str, _Known] = {}

    async def members(self, group: str) -> tuple[frozenset[str], str]:
        """The members (possibly stale, possibly none) and the problem met asking Slack, if any."""
        known = self._known.get(group)
        if known is not None and known.until > self._clock.now():
            return known.members, ""
        try:
            members = await asyncio.wait_for(self._fetch(group), LOOKUP_TIMEOUT)
        except API_ERRORS as exc:
            problem = f"could not list user group {group}: {describe(exc)}"
            log.warning("%s%s", problem, "; using the members known before" if known else "")
            return (known.members, "") if known else (frozenset(), problem)
        self._known[group] = _Known(members, self._clock.now() + GROUP_TTL)
        return members, ""


async def decide(audience: tuple[str, ...], user_id: str, groups: GroupMembers) -> Decision:
    """Allowed when the audience has `everyone`, the user, or a group the user is in (groups asked at once)."""
    if EVERYONE in audience or user_id in audience:
        return Decision(True)
    found = await asyncio.gather(*(groups.members(given) for given in audience if given.startswith("S")))
    if any(user_id in members for members, _ in found):
        return Decision(True)
    return Decision(False, tuple(problem for _, problem in found if problem))
