"""The router: a list of small stages that decide what happens to each event.

Each stage looks at one event and either passes it on (returns None) or decides its
outcome with a reason (returns a Verdict). Reading STAGES top to bottom tells the
semantics, in the manner of Alertmanager's notify pipeline:

    route        the level exists and has lamps            else unrouted
    resolve      a `resolved` event ends matching signals  -> resolved
    deduplicate  same key active or seen within the window -> deduplicated (hold refreshed)
    quiet_hours  quiet hours or a snooze, level without bypass -> quiet
    rate_limit   sender or source over its token bucket    -> throttled (with retry_after)
    show         everything else becomes a signal          -> shown

The router keeps the memory the stages need (rate buckets, when a key was last seen)
but does no I/O; the service persists the verdict and then commits it here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import NamedTuple

from lamplighter.config import GuardsConfig, RateConfig
from lamplighter.model import Event, Level, Outcome, Signal, Status, format_duration
from lamplighter.rules.active import ActiveSignals
from lamplighter.rules.quiet import in_quiet_hours
from lamplighter.rules.ratelimit import TokenBucket, describe_rate


@dataclass(frozen=True)
class Verdict:
    """What the router decided for one event, and the signal changes that follow."""

    outcome: Outcome
    reasons: tuple[str, ...] = ()
    new_signal: Signal | None = None  # event_id is filled in once the event is stored
    refreshed: Signal | None = None
    ended: tuple[Signal, ...] = ()
    retry_after: float | None = None

    @property
    def signal_id(self) -> int | None:
        """The signal this event touched, for linking events into incidents."""
        touched = self.refreshed or (self.ended[0] if self.ended else None)
        return touched.event_id if touched else None


class Seen(NamedTuple):
    """When a key was last shown or deduplicated, and whether it was an explicit key."""

    at: float
    keyed: bool


@dataclass(frozen=True)
class Snooze:
    """Everything without the quiet-hours bypass stays dark until `until`."""

    until: float
    by: str

    def reason(self) -> str:
        return f"snoozed by {self.by} until {datetime.fromtimestamp(self.until).astimezone():%H:%M}"


@dataclass
class Routing:
    """One event on its way through the stages, with what they may consult."""

    event: Event
    now: float
    level: Level | None
    active: ActiveSignals
    lamps: frozenset[str] = field(default_factory=frozenset)


class Memory(NamedTuple):
    """A copy of the router's memory (its values are immutable, so a shallow copy is a snapshot)."""

    buckets: dict[tuple[str, ...], TokenBucket]
    last_seen: dict[tuple[str, str], Seen]
    prune_above: int


Stage = Callable[["Router", Routing], Verdict | None]
PRUNE_ABOVE = 10_000


@dataclass
class Router:
    """Stages plus their memory. `route` decides; `commit` remembers a stored verdict."""

    levels: Mapping[str, Level]
    lamp_names: frozenset[str]
    guards: GuardsConfig
    buckets: dict[tuple[str, ...], TokenBucket] = field(default_factory=dict)
    last_seen: dict[tuple[str, str], Seen] = field(default_factory=dict)
    prune_above: int = PRUNE_ABOVE  # doubles when pruning frees little, so pruning stays amortized O(1)
    snooze: Snooze | None = None

    def route(self, event: Event, active: ActiveSignals, now: float) -> Verdict:
        routing = Routing(event=event, now=now, level=self.levels.get(event.level), active=active)
        for stage in STAGES:
            verdict = stage(self, routing)
            if verdict is not None:
                return verdict
        raise AssertionError("the show stage always decides")

    def commit(self, event: Event, verdict: Verdict) -> None:
        """Remember a verdict once it is stored: dedup memory follows what was shown."""
        key = (event.level, event.dedup_key)
        if verdict.outcome in (Outcome.SHOWN, Outcome.DEDUPLICATED):
            self.last_seen[key] = Seen(event.received_at, keyed=bool(event.key))
        elif verdict.outcome is Outcome.RESOLVED:
            for level in self.levels:
                self.last_seen.pop((level, event.dedup_key), None)
        if len(self.last_seen) + len(self.buckets) > self.prune_above:
            self.forget(event.received_at)
            self.prune_above = max(PRUNE_ABOVE, 2 * (len(self.last_seen) + len(self.buckets)))

    def forget(self, now: float) -> None:
        """Drop memory that no longer changes a decision: keys past the window, full buckets."""
        self.last_seen = {k: seen for k, seen in self.last_seen.items() if now - seen.at < self.window(seen.keyed)}
        self.buckets = {k: b for k, b in self.buckets.items() if b.tokens_at(now) < b.burst}

    def window(self, keyed: bool) -> float:
        """How long a key is remembered: an explicit key until resolved (capped), else a short window."""
        return self.guards.keyed_dedup_window if keyed else self.guards.dedup_window

    def bucket(self, key: tuple[str, ...], rate: RateConfig, now: float) -> TokenBucket:
        return self.buckets.get(key) or TokenBucket.full(rate.every, rate.burst, now)

    def memory(self) -> Memory:
        """What the stages remember now, to be put back with `restore` if a batch is not stored."""
        return Memory(dict(self.buckets), dict(self.last_seen), self.prune_above)

    def restore(self, memory: Memory) -> None:
        self.buckets, self.last_seen = dict(memory.buckets), dict(memory.last_seen)
        self.prune_above = memory.prune_above


def level_lamps(level: Level, lamp_names: frozenset[str]) -> frozenset[str]:
    """The lamps a level shows on: those it names, or every lamp."""
    return frozenset(level.lamps if level.lamps is not None else lamp_names) & lamp_names


def route(router: Router, r: Routing) -> Verdict | None:
    if r.level is None:
        return Verdict(Outcome.UNROUTED, (f"no level named {r.event.level!r}",))
    r.lamps = frozenset(r.event.lamps) & router.lamp_names if r.event.lamps else level_lamps(r.level, router.lamp_names)
    if not r.lamps and r.event.status is Status.FIRING:
        return Verdict(Outcome.UNROUTED, (f"level {r.level.name} has no lamps",))
    return None


def resolve(router: Router, r: Routing) -> Verdict | None:
    if r.event.status is not Status.RESOLVED:
        return None
    ended = tuple(r.active.with_key(r.event.dedup_key))
    if not ended:
        return Verdict(Outcome.RESOLVED, ("nothing active with this key",))
    ids = ", ".join(str(s.event_id) for s in ended)
    return Verdict(Outcome.RESOLVED, (f"ended signal {ids}",), ended=ended)


def deduplicate(router: Router, r: Routing) -> Verdict | None:
    key = r.event.dedup_key
    same = [s for s in r.active.with_key(key) if s.level == r.event.level]
    if same:
        refreshed = same[0].refreshed(r.now, r.level.hold if r.level else None)
        reason = f"same key as active event {same[0].event_id}; hold refreshed"
        return Verdict(Outcome.DEDUPLICATED, (reason,), refreshed=refreshed)
    seen = router.last_seen.get((r.event.level, key))
    window = router.window(bool(r.event.key))
    if seen is not None and r.now - seen.at < window:
        ago = format_duration(r.now - seen.at)
        why = "until it is resolved" if r.event.key else f"window {format_duration(window)}"
        return Verdict(Outcome.DEDUPLICATED, (f"same key seen {ago} ago ({why})",))
    return None


def quiet_hours(router: Router, r: Routing) -> Verdict | None:
    if r.level is None or r.level.quiet_hours_bypass:
        return None
    if router.snooze is not None and r.now < router.snooze.until:
        return Verdict(Outcome.QUIET, (router.snooze.reason(),))
    if in_quiet_hours(router.guards.quiet_hours, r.now):
        return Verdict(Outcome.QUIET, (f"quiet hours; level {r.level.name} does not bypass them",))
    return None


def rate_limit(router: Router, r: Routing) -> Verdict | None:
    limits = router.guards.rate_limit
    event, sender = r.event, r.event.sender or "anonymous"
    checks = [
        (("sender", event.source, sender), limits.per_sender, f"sender {sender}"),
        (("source", event.source, event.level), limits.per_source, f"source {event.source} for level {event.level}"),
    ]
    buckets = [(key, router.bucket(key, rate, r.now), rate, who) for key, rate, who in checks if rate is not None]
    for _, bucket, rate, who in buckets:
        if not bucket.has_token(r.now):
            wait = bucket.retry_after(r.now)
            reason = f"{who} is over the limit ({describe_rate(rate.burst, rate.every)}); " \
                     f"try again in {format_duration(wait)}"
            return Verdict(Outcome.THROTTLED, (reason,), retry_after=round(wait, 1))
    for key, bucket, _, _ in buckets:
        router.buckets[key] = bucket.take(r.now)
    return None


def show(router: Router, r: Routing) -> Verdict | None:
    assert r.level is not None, "route() stops events without a level"
    superseded = tuple(r.active.with_key(r.event.dedup_key))
    signal = Signal(
        event_id=0,
        level=r.level.name,
        key=r.event.dedup_key,
        title=r.event.title,
        priority=r.level.priority,
        look=r.level.look,
        lamps=r.lamps,
        started_at=r.now,
        expires_at=None if r.level.hold is None else r.now + r.level.hold,
    )
    sirens = frozenset(r.level.sirens or ())
    signal = replace(signal, sirens=sirens, escalates_at=r.now + r.level.escalate_after if sirens else None)
    reasons = tuple(f"replaces event {s.event_id} ({s.level})" for s in superseded)
    return Verdict(Outcome.SHOWN, reasons, new_signal=signal, ended=superseded)


STAGES: tuple[Stage, ...] = (route, resolve, deduplicate, quiet_hours, rate_limit, show)
