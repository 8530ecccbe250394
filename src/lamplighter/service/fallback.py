"""Fallback: a visible signal none of whose lamps can show it takes its level's fallback, once.

"Cannot show it" is every lamp of the signal offline or reporting another look. Then the
level's fallback lamps and sirens join the signal until it ends, and its fallback
notifications (Apprise URLs, slack-app:#channel) are posted once, saying why.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, MutableMapping
from dataclasses import replace

from lamplighter.announce import Announcements
from lamplighter.announce.text import Announcement
from lamplighter.model import Level, Signal
from lamplighter.service.activity import Activity
from lamplighter.service.broadcast import Broadcast

log = logging.getLogger(__name__)


class Fallback:
    def __init__(self, levels: dict[str, Level], notices: Announcements, activity: Broadcast[Activity]) -> None:
        self._levels = levels
        self.notices = notices
        self._activity = activity
        self._used: set[int] = set()  # signals that used their level's fallback

    def reconfigure(self, levels: dict[str, Level], notices: Announcements) -> Announcements:
        """A reloaded configuration's levels and notices; the signals that used their fallback stay so.
        Returns the old notices, for the caller to close."""
        old, self._levels, self.notices = self.notices, levels, notices
        return old

    def apply(self, signals: MutableMapping[int, Signal], now: float, outputs: frozenset[str],
              reachable: Callable[[str], bool], problem: Callable[[str], str]) -> bool:
        """Give each newly stranded signal its fallback outputs (in `signals`); True when one changed."""
        self._used &= signals.keys()
        stranded = [s for s in signals.values() if s.event_id not in self._used and s.visible_at(now)
                    and self._levels[s.level].fallback and not any(reachable(lamp) for lamp in s.lamps)]
        for signal in stranded:
            self._used.add(signal.event_id)
            level = self._levels[signal.level]
            signals[signal.event_id] = replace(signal, fallbacks=frozenset(n for n in level.fallback_outputs
                                                                           if n in outputs))
            why = "; ".join(f"{lamp}: {problem(lamp)}" for lamp in sorted(signal.lamps) if lamp in outputs)
            log.warning("%s %r reaches none of its lamps (%s); using its fallback", signal.level, signal.title, why)
            self.notices.post(signal.level, Announcement(
                f"{signal.level}: {signal.title}",
                f"Lamplighter cannot show this on its lamps ({why}). Event {signal.event_id}."), signal.event_id)
            self._activity.publish(Activity("fallback", signal.event_id))
        return bool(stranded)
