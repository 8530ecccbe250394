"""Where a signal is right now, as facts: on which lamps it shows, what covers it, which lamps are down.

Pure: the service gathers the inputs (active signals, which lamps can be reached, where each
signal was ever shown) and every face words the result through one function
(announce/text.py `where_text`), so Slack, the API, the CLI and the dashboard never disagree.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from lamplighter.model import Signal
from lamplighter.rules.reconcile import winner


class Where(StrEnum):
    """The one word for where a signal is."""

    ON_LAMP = "on_lamp"  # a reachable lamp of its own shows it (or is about to: it wins there)
    QUEUED = "queued"  # its reachable lamps show a higher signal; it shows when that ends
    SNOOZED = "snoozed"  # hidden until its snooze ends
    FALLBACK_ONLY = "fallback_only"  # none of its lamps can be reached; its level's fallback shows it
    OFFLINE = "offline"  # none of its lamps can be reached, and there is no fallback output
    ENDED = "ended"  # not active any more


@dataclass(frozen=True)
class Placement:
    where: Where
    lamps: tuple[str, ...] = ()  # ON_LAMP: the lamps it wins on; FALLBACK_ONLY: the fallback outputs
    behind: Signal | None = None  # QUEUED: the signal that covers it
    offline: tuple[tuple[str, str], ...] = ()  # its own lamps that cannot be reached, with why
    snoozed_until: float | None = None
    ever_shown_on: tuple[str, ...] = ()  # lamps that have actually shown it (what their devices applied)
    ever_known: bool = True  # False: it began before the daemon started, so where it was shown is not known


def winners_at(signals: Iterable[Signal], lamps: Iterable[str], now: float) -> dict[str, Signal | None]:
    """What each lamp should show now (reconcile's winner), computed once for many placements."""
    active = list(signals)
    return {lamp: winner(active, lamp, now) for lamp in lamps}


def place(signal: Signal | None, winners: Mapping[str, Signal | None], reachable: Callable[[str], bool],
          problem: Callable[[str], str], now: float, ever_shown_on: Iterable[str] = (),
          ever_known: bool = True) -> Placement:
    """The facts about `signal` (None: it ended), given what each lamp should show now (`winners_at`)."""
    ever = tuple(sorted(ever_shown_on))
    if signal is None or not signal.active_at(now):
        return Placement(Where.ENDED, ever_shown_on=ever, ever_known=ever_known or bool(ever))
    offline = tuple((lamp, problem(lamp)) for lamp in sorted(signal.lamps) if not reachable(lamp))
    if signal.snoozed_until is not None and now < signal.snoozed_until:
        return Placement(Where.SNOOZED, offline=offline, snoozed_until=signal.snoozed_until, ever_shown_on=ever)
    up = [lamp for lamp in sorted(signal.lamps) if reachable(lamp)]
    winning = tuple(lamp for lamp in up if _wins(signal, winners, lamp))
    if winning:
        return Placement(Where.ON_LAMP, winning, offline=offline, ever_shown_on=ever)
    if up:
        covers = [w for lamp in up if (w := winners.get(lamp)) is not None]
        behind = max(covers, key=lambda s: (s.priority, s.started_at), default=None)
        return Placement(Where.QUEUED, behind=behind, offline=offline, ever_shown_on=ever)
    fallbacks = tuple(lamp for lamp in sorted(signal.fallbacks) if _wins(signal, winners, lamp))
    return Placement(Where.FALLBACK_ONLY if fallbacks else Where.OFFLINE, fallbacks, offline=offline,
                     ever_shown_on=ever)


def _wins(signal: Signal, winners: Mapping[str, Signal | None], lamp: str) -> bool:
    shown = winners.get(lamp)
    return shown is not None and shown.event_id == signal.event_id
