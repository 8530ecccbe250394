"""The morning digest: when a quiet-hours window ends, post what happened during it.

`digest: [ntfy://..., slack-app:#team]` in the configuration names where; with no entry there
is no digest. The service's one timer wakes at each window's end (`next_deadline`) and calls
`post_due`, which posts once per window: the events of the window counted by outcome and the
notable ones listed (announce/text.py `digest_text`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from lamplighter.announce import Announcements, Announcer, build_announcer
from lamplighter.announce.text import digest_announcement
from lamplighter.config import QuietHoursConfig
from lamplighter.errors import ConfigError
from lamplighter.rules.away import Away
from lamplighter.rules.quiet import next_quiet_end, quiet_windows_around
from lamplighter.sources.base import Source

DIGEST = "digest"


def build_digest_announcers(targets: Sequence[str], sources: Mapping[str, Source]) -> list[Announcer]:
    """The announcers of `digest:`; ConfigError names each bad entry as digest.N."""
    found: list[Announcer] = []
    problems: list[tuple[str, str]] = []
    for index, target in enumerate(targets):
        try:
            found.append(build_announcer(target, sources))
        except ConfigError as exc:
            problems += [(f"digest.{index}", message) for _, message in exc.problems]
    if problems:
        raise ConfigError(problems)
    return found


class Digest:
    def __init__(self, windows: list[QuietHoursConfig], announcers: list[Announcer], now: float) -> None:
        self._windows = windows
        self.announcements = Announcements({DIGEST: announcers})
        self._next_end = next_quiet_end(windows, now) if announcers and windows else None

    def next_deadline(self, now: float) -> float | None:
        return self._next_end

    def post_due(self, now: float, away: Callable[[float, float], Away]) -> Away | None:
        """If a quiet window has ended by `now`, post its digest (once) and return what it said."""
        if self._next_end is None or now < self._next_end:
            return None
        ended = self._next_end
        start = next((s for s, e in quiet_windows_around(self._windows, ended, days_ahead=0) if e == ended), ended)
        self._next_end = next_quiet_end(self._windows, now)
        summary = away(start, ended)
        self.announcements.post(DIGEST, digest_announcement(summary), None)
        return summary
