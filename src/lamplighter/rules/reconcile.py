"""Reconcile: from the active signals, a lamp's restore snapshot and the time, what it should show.

Pure functions only; the service re-runs them on every change and at every deadline.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from lamplighter.model import LampState, Signal


@dataclass(frozen=True)
class Desired:
    """What a lamp should show now. `state` None: no opinion, leave the lamp as it is."""

    state: LampState | None
    showing: Signal | None


def winner(signals: Iterable[Signal], lamp: str, now: float) -> Signal | None:
    """The active signal a lamp shows: highest priority, then newest, then highest id."""
    candidates = [s for s in signals if lamp in s.outputs_at(now) and s.visible_at(now)]
    return max(candidates, key=lambda s: (s.priority, s.started_at, s.event_id), default=None)


def reconcile(signals: Iterable[Signal], lamp: str, snapshot: LampState | None, now: float) -> Desired:
    """The winner's look, else the snapshot taken before the first signal, else no opinion."""
    shown = winner(signals, lamp, now)
    if shown is not None:
        return Desired(state=shown.look, showing=shown)
    return Desired(state=snapshot, showing=None)


def next_deadline(signals: Iterable[Signal], now: float) -> float | None:
    """The earliest future moment at which some signal's hold or snooze ends or it escalates."""
    edges = [t for s in signals for t in (s.expires_at, s.snoozed_until, s.escalates_at) if t is not None and t > now]
    return min(edges, default=None)


def expired(signals: Iterable[Signal], now: float) -> list[Signal]:
    """Signals whose hold has ended by `now`."""
    return [s for s in signals if not s.active_at(now)]
