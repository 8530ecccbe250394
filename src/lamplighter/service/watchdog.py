"""The dead-man's switch, applied: a `blind` event for each source gone silent or disconnected,
and a resolving one when it is back (the rule itself is rules/watchdog.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from lamplighter.model import BLIND_LEVEL, Event, Receipt, Signal, make_event
from lamplighter.rules.watchdog import Watch, blind_deadline, blind_reason
from lamplighter.sources.base import Source

WATCHDOG = "watchdog"  # source and sender of the dead-man's switch's own events


class DeadMansSwitch:
    """Watches every source; `check` submits what changed, `next_deadline` says when to look again."""

    def __init__(self, sources: Mapping[str, Source], watching_since: float) -> None:
        self._sources = sources
        self.watching_since = watching_since

    def check(self, now: float, signals: Iterable[Signal], submit: Callable[[Event], Receipt]) -> None:
        """Raise a `blind` signal for each source gone silent or disconnected; resolve it when it is back."""
        showing = {s.key for s in signals if s.level == BLIND_LEVEL}
        for watch in self.watches():
            key = _key(watch.source)
            reason = blind_reason(watch, now)
            if reason is not None and key not in showing:
                submit(make_event(BLIND_LEVEL, reason, received_at=now, source=WATCHDOG, sender=WATCHDOG, key=key))
            elif reason is None and key in showing:
                submit(_resolved(watch.source, f"{watch.source} is back", now))

    def release(self, sources: Iterable[str], now: float, signals: Iterable[Signal],
                submit: Callable[[Event], Receipt]) -> None:
        """Resolve the `blind` signals of sources that are no longer configured (a reload removed them)."""
        showing = {s.key for s in signals if s.level == BLIND_LEVEL}
        for source in sources:
            if _key(source) in showing:
                submit(_resolved(source, f"{source} is no longer configured", now))

    def next_deadline(self, now: float) -> float | None:
        """The moment the next source turns blind if nothing changes before then."""
        return min((d for w in self.watches() if (d := blind_deadline(w)) is not None and d > now), default=None)

    def watches(self) -> list[Watch]:
        return [Watch(s.name, s.settings.expect_every, s.health.last_event_at or self.watching_since,
                      s.health.disconnected_since) for s in self._sources.values()]


def _key(source: str) -> str:
    return f"{BLIND_LEVEL}:{source}"


def _resolved(source: str, title: str, now: float) -> Event:
    return make_event(BLIND_LEVEL, title, received_at=now, source=WATCHDOG, sender=WATCHDOG, key=_key(source),
                      status="resolved")
