"""Health as /healthz reports it: `ok`, or `degraded` with one reason per lamp offline or not showing
what it was sent, and per source disconnected or blind (silent past its `expect_every`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from lamplighter.model import LampView
from lamplighter.rules.watchdog import Watch, blind_reason
from lamplighter.sources.base import Source


@dataclass(frozen=True)
class Health:
    reasons: tuple[str, ...]
    lamps: int
    lamps_online: int

    @property
    def status(self) -> str:
        return "degraded" if self.reasons else "ok"


def assess(views: Sequence[LampView], sources: Mapping[str, Source], watches: Iterable[Watch], now: float) -> Health:
    """The service's health from its lamps' views and its sources' health, as of `now`."""
    reasons = [reason for view in views if (reason := _lamp_problem(view))]
    blind = {watch.source: blind_reason(watch, now) for watch in watches}
    for name, source in sources.items():
        if not source.health.connected:
            reasons.append(f"source {name} disconnected: {source.health.error or 'no reason given'}")
        elif blind.get(name):
            reasons.append(f"source {name} blind: {blind[name]}")
    return Health(tuple(reasons), len(views), sum(view.online for view in views))


def _lamp_problem(view: LampView) -> str:
    if not view.online:
        return f"{view.kind} {view.name} offline: {view.error or 'no reason given'}"
    if not view.reached:
        return f"{view.kind} {view.name} not showing what it was sent: {view.error or 'no reason given'}"
    return ""
