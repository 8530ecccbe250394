"""The service facade every face (HTTP API, CLI, sources) talks to.

An event travels: `submit` routes it, stores it with its outcome in one transaction,
commits the verdict to the in-memory active signals, and wakes the lamp controllers.
`submit_many` does the same for a batch (an Alertmanager notification) in one transaction.
A single timer re-runs the reconcile at the next hold deadline. Nothing here sleeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from lamplighter.announce import Announcements
from lamplighter.announce.text import Announcement
from lamplighter.config import Config
from lamplighter.drivers.base import Driver
from lamplighter.drivers.registry import build_driver
from lamplighter.errors import ConfigError, DriverError, EventError, LampBusy, LampUrlError
from lamplighter.model import (
    BLIND_LEVEL,
    Clock,
    Event,
    LampView,
    Level,
    Outcome,
    Receipt,
    Signal,
    SignalAction,
    SystemClock,
    make_event,
)
from lamplighter.rules.reconcile import expired, next_deadline
from lamplighter.rules.router import Router, Seen, Snooze, Verdict
from lamplighter.rules.watchdog import Watch, blind_deadline, blind_reason
from lamplighter.service.broadcast import Broadcast
from lamplighter.service.lamp import LampController
from lamplighter.service.metrics import Metrics
from lamplighter.sources import build_sources
from lamplighter.sources.base import Source
from lamplighter.store import Store, StoredSignal

log = logging.getLogger(__name__)

DATABASE_NAME = "lamplighter.db"


@dataclass(frozen=True)
class Activity:
    """Something a live view should refresh for: an event stored, a signal acknowledged, snoozed or ended."""

    kind: str  # "event", "acknowledged", "snoozed", "expired", "snooze", "sources", "fallback"
    event_id: int | None = None


SNOOZE_SETTING = "snooze"
WATCHDOG = "watchdog"  # source and sender of the dead-man's switch's own events


def validate(config: Config) -> list[tuple[str, str]]:
    """Problems a running service would hit that the file's schema cannot see: URLs, source settings."""
    problems = _lamp_problems(config)
    try:
        sources = build_sources(_source_entries(config), SystemClock())
        levels = config.resolved_levels()
        Announcements.build(_announce_specs(levels), sources)
        Announcements.build(_fallback_specs(levels), sources, field="fallback")
    except ConfigError as exc:
        problems.extend(exc.problems)
    return problems


def _announce_specs(levels: Mapping[str, Level]) -> dict[str, tuple[str, ...]]:
    return {name: level.announce for name, level in levels.items()}


def _fallback_specs(levels: Mapping[str, Level]) -> dict[str, tuple[str, ...]]:
    return {name: level.fallback_notices for name, level in levels.items()}


def _source_entries(config: Config) -> list[dict[str, Any]]:
    return [entry.model_dump() for entry in config.sources]


def _lamp_problems(config: Config) -> list[tuple[str, str]]:
    return [(f"{kind}.{name}", str(exc)) for kind, name, url in _outputs(config) if (exc := _url_problem(url))]


def _outputs(config: Config) -> list[tuple[str, str, str]]:
    """Every output the service drives: (`lamps` or `sirens`, name, URL)."""
    return [("lamps", name, url) for name, url in config.lamps.items()] + [
        ("sirens", name, url) for name, url in config.sirens.items()]


def _url_problem(url: str) -> LampUrlError | None:
    try:
        build_driver(url)
    except LampUrlError as exc:
        return exc
    return None


def build_drivers(config: Config) -> dict[str, Driver]:
    problems = _lamp_problems(config)
    if problems:
        raise ConfigError(problems)
    return {name: build_driver(url) for _, name, url in _outputs(config)}


class Service:
    """Everything Lamplighter does, behind one facade. Use `async with service.running():`."""

    def __init__(self, config: Config, clock: Clock | None = None, drivers: Mapping[str, Driver] | None = None) -> None:
        self.config = config
        self.clock = clock or SystemClock()
        self.levels: dict[str, Level] = config.resolved_levels()
        self.metrics = Metrics()
        self.store = Store(config.state_dir / DATABASE_NAME)
        self.router = Router(self.levels, frozenset(config.lamps), config.guards)
        self.signals: dict[int, Signal] = {}
        self._started_at = self.clock.now()
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.lamps = {
            name: LampController(name, driver, self.store, self.clock, self._lamp_changed, self._lamp_applying,
                                 kind="siren" if name in config.sirens else "lamp")
            for name, driver in (drivers if drivers is not None else build_drivers(config)).items()
        }
        self.lamp_changes: dict[str, Broadcast[LampView]] = {name: Broadcast() for name in self.lamps}
        self.activity: Broadcast[Activity] = Broadcast()
        self.sources: dict[str, Source] = build_sources(_source_entries(config), self.clock)
        for source in self.sources.values():
            source.state_dir = config.state_dir / "sources" / source.name
        self.announcements = Announcements.build(_announce_specs(self.levels), self.sources)
        self.fallback_notices = Announcements.build(_fallback_specs(self.levels), self.sources, field="fallback")
        self._fell_back: set[int] = set()  # signals that used their level's fallback
        self.lamp_tests: dict[str, Signal] = {}  # lamp -> a level shown on it as a test (not an event)

    # ---- lifecycle -------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Service]:
        await self.start()
        try:
            yield self
        finally:
            await self.stop()

    async def start(self) -> None:
        """Resume what the store remembers, then start one task per lamp."""
        now = self.clock.now()
        for name, snapshot in self.store.snapshots().items():
            if name in self.lamps:
                self.lamps[name].snapshot = snapshot
        self._resume_signals(now)
        guards = self.config.guards
        for level, key, at, keyed in self.store.seen_since(now - max(guards.dedup_window, guards.keyed_dedup_window)):
            if now - at < self.router.window(keyed):
                self.router.last_seen[(level, key)] = Seen(at, keyed)
        self._started_at = now
        for name, at in self.store.last_event_per_source().items():
            if name in self.sources:
                self.sources[name].health.last_event_at = at
        loop = asyncio.get_running_loop()

        def health_changed() -> None:  # sources may report from their own threads
            loop.call_soon_threadsafe(self._source_health_changed)

        for source in self.sources.values():
            source.on_health_change = health_changed
            source.facade = self
        snooze = self.store.setting(SNOOZE_SETTING)
        if snooze is not None and snooze["until"] > now:
            self.router.snooze = Snooze(until=snooze["until"], by=snooze["by"])
        self._tasks = [asyncio.create_task(c.run(), name=f"lamp {c.name}") for c in self.lamps.values()]
        self._tasks += [asyncio.create_task(s.run(self.submit), name=f"source {s.name}") for s in self.sources.values()]
        self._changed(since=None)
        self._watch_sources()  # a source silent since before the restart is blind now, not at its next event

    async def stop(self) -> None:
        """Stop the lamp tasks, close the drivers and the store; safe to call twice."""
        if self._timer is not None:
            self._timer.cancel()
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.announcements.close()
        await self.fallback_notices.close()
        for controller in self.lamps.values():
            try:
                await controller.driver.close()
            except DriverError as exc:
                log.warning("lamp %s did not close cleanly: %s", controller.name, exc)
        self.store.close()

    def _resume_signals(self, now: float) -> None:
        stale: list[int] = []
        for stored in self.store.active_signals():
            signal = self._signal_from_store(stored)
            if signal is None or not signal.active_at(now):
                stale.append(stored.event_id)
            else:
                self.signals[signal.event_id] = signal
        if stale:
            self.store.end_signals(stale, now, "expired")
        if self.signals:
            log.info("resumed %d active signal(s) from the store", len(self.signals))

    def _signal_from_store(self, stored: StoredSignal) -> Signal | None:
        level = self.levels.get(stored.level)
        lamps = stored.lamps & set(self.lamps)
        if level is None or not lamps:
            return None
        sirens = frozenset(level.sirens or ()) & set(self.lamps)
        escalates_at = stored.started_at + level.escalate_after if sirens else None
        return Signal(stored.event_id, stored.level, stored.key, stored.title, level.priority, level.look,
                      frozenset(lamps), stored.started_at, stored.expires_at, stored.snoozed_until,
                      sirens, escalates_at)

    # ---- events ----------------------------------------------------------------------------

    def submit(self, event: Event) -> Receipt:
        """Route, store, then show. Raises StoreError (and changes nothing) if the store fails."""
        return self.submit_many([event])[0]

    def submit_many(self, events: Sequence[Event]) -> list[Receipt]:
        """Submit the events of one request exactly as `submit` would one after another, in one journal
        transaction (one fsync, however big the batch). Raises StoreError and changes nothing if the store fails."""
        # A lone event changes the memory only once it is stored (bar the rate-limit token it took, as
        # ever); in a batch the events before a failed one already did, so a batch keeps a copy to put back.
        before = (self.router.memory(), dict(self.signals)) if len(events) > 1 else None
        try:
            with self.store.transaction():
                stored = [(event, *self._store(event)) for event in events]
        except BaseException:
            if before is not None:
                self.router.restore(before[0])
                self.signals.clear()
                self.signals.update(before[1])
            raise
        receipts = [self._receipt(event, event_id, verdict) for event, event_id, verdict in stored]
        if any(event.source in self.sources for event in events):
            self._watch_sources()
        changed = [event.received_at for event, _, v in stored if v.new_signal or v.ended or v.refreshed]
        if changed:
            self._changed(since=min(changed))
        return receipts

    def _store(self, event: Event) -> tuple[int, Verdict]:
        """Route an event against what the events before it left, write it, and remember the verdict."""
        verdict = self.router.route(event, self.signals, self.clock.now())
        event_id = self.store.record_event(
            event, verdict.outcome, verdict.reasons,
            signal_id=verdict.signal_id, new_signal=verdict.new_signal, refreshed=verdict.refreshed,
            ended=verdict.ended, end_reason="resolved" if verdict.outcome is Outcome.RESOLVED else "superseded",
        )
        self.router.commit(event, verdict)
        self._apply_verdict(event_id, verdict)
        return event_id, verdict

    def _receipt(self, event: Event, event_id: int, verdict: Verdict) -> Receipt:
        """Tell everyone about a stored event: source health, metrics, live views, announcements."""
        if event.source in self.sources:
            self.sources[event.source].health.last_event_at = event.received_at
        self.metrics.events.labels(event.level, verdict.outcome.value).inc()
        signal_id = event_id if verdict.new_signal else verdict.signal_id
        self.activity.publish(Activity("event", event_id))
        receipt = Receipt(event_id, verdict.outcome, verdict.reasons, verdict.retry_after, signal_id)
        self.announcements.announce(event.with_id(event_id), receipt)  # only `shown` posts; returns at once
        return receipt

    def _apply_verdict(self, event_id: int, verdict: Verdict) -> None:
        for ended in verdict.ended:
            self.signals.pop(ended.event_id, None)
        if verdict.refreshed is not None:
            self.signals[verdict.refreshed.event_id] = verdict.refreshed
        if verdict.new_signal is not None:
            self.signals[event_id] = replace(verdict.new_signal, event_id=event_id)

    def record_rejected(self, event: Event, reason: str) -> Receipt:
        """Store an event a source refused to route (a spoofed mail), so /api/events shows why."""
        event_id = self.store.record_event(event, Outcome.REJECTED, [reason])
        self.metrics.events.labels(event.level, Outcome.REJECTED.value).inc()
        self.activity.publish(Activity("event", event_id))
        return Receipt(event_id, Outcome.REJECTED, (reason,), None, None)

    def event_record(self, event_id: int) -> dict[str, Any] | None:
        """A stored event with its outcome and reasons (what `why` answers from)."""
        return self.store.event(event_id)

    def _signal_of(self, event_id: int) -> int | SignalAction:
        """The active signal an event started or refreshed, or why there is none."""
        event = self.store.event(event_id)
        if event is None:
            return SignalAction.UNKNOWN
        signal_id: int = event["signal_id"] or event_id
        return signal_id if signal_id in self.signals else SignalAction.NOT_ACTIVE

    def acknowledge(self, event_id: int, by: str) -> SignalAction:
        """End the signal an event started or refreshed; the lamp restores if nothing else is active."""
        signal_id = self._signal_of(event_id)
        if isinstance(signal_id, SignalAction):
            return signal_id
        self.store.end_signals([signal_id], self.clock.now(), f"acknowledged by {by}")
        del self.signals[signal_id]
        self._changed(since=None)
        self.activity.publish(Activity("acknowledged", signal_id))
        return SignalAction.DONE

    def snooze_signal(self, event_id: int, seconds: float) -> SignalAction:
        """Hide a signal from the lamps for a while; it shows again if it is still active then."""
        signal_id = self._signal_of(event_id)
        if isinstance(signal_id, SignalAction):
            return signal_id
        self._snooze([self.signals[signal_id]], self.clock.now() + seconds)
        self.activity.publish(Activity("snoozed", signal_id))
        return SignalAction.DONE

    def snooze_all(self, seconds: float, by: str) -> Snooze:
        """Keep everything without the quiet-hours bypass dark for a while, new events included."""
        snooze = Snooze(until=self.clock.now() + seconds, by=by)
        self.store.set_setting(SNOOZE_SETTING, {"until": snooze.until, "by": by})
        self.router.snooze = snooze
        bypass = {name for name, level in self.levels.items() if level.quiet_hours_bypass}
        self._snooze([s for s in self.signals.values() if s.level not in bypass], snooze.until)
        self.activity.publish(Activity("snooze"))
        return snooze

    def end_snooze(self) -> None:
        """Lift the global snooze and every signal's snooze: the lamps show what is active."""
        self.store.set_setting(SNOOZE_SETTING, None)
        self.router.snooze = None
        self._snooze(list(self.signals.values()), None)
        self.activity.publish(Activity("snooze"))

    def _snooze(self, signals: list[Signal], until: float | None) -> None:
        self.store.snooze_signals([s.event_id for s in signals], until)
        for signal in signals:
            self.signals[signal.event_id] = replace(signal, snoozed_until=until)
        self._changed(since=None)

    def test_lamp(self, lamp: str, level_name: str, seconds: float) -> Signal:
        """Show a level's look on one lamp or siren for `seconds`, then put it back as it was.

        A test is not an event: nothing is stored, announced or escalated. EventError for an
        unknown level, KeyError for an unknown lamp, LampBusy while the lamp shows a signal.
        """
        controller = self.lamps[lamp]
        level = self.levels.get(level_name)
        if level is None:
            raise EventError("level", f"unknown level {level_name!r} (known: {', '.join(self.levels)})")
        if controller.showing is not None and controller.showing.event_id > 0:
            shown = controller.showing
            raise LampBusy(f"{lamp} is showing event {shown.event_id} ({shown.level}: {shown.title}); "
                           "test it when that has ended")
        now = self.clock.now()
        test = Signal(event_id=-1 - list(self.lamps).index(lamp), level=level.name,  # never an event's id
                      key=f"test:{lamp}", title=f"test of {lamp}", priority=level.priority, look=level.look,
                      lamps=frozenset({lamp}), started_at=now, expires_at=now + seconds)
        self.lamp_tests[lamp] = test
        self._changed(since=None)
        return test

    def tick(self) -> None:
        """A hold deadline passed: end expired signals and reconcile."""
        now = self.clock.now()
        self.lamp_tests = {lamp: test for lamp, test in self.lamp_tests.items() if test.active_at(now)}
        ended = expired(self.signals.values(), now)
        if ended:
            self.store.end_signals([s.event_id for s in ended], now, "expired")
            for signal in ended:
                del self.signals[signal.event_id]
                self.activity.publish(Activity("expired", signal.event_id))
        self._changed(since=None)
        self._watch_sources()

    def _watch_sources(self) -> None:
        """Raise a `blind` signal for each source gone silent or disconnected; resolve it when it is back."""
        now = self.clock.now()
        showing = {s.key for s in self.signals.values() if s.level == BLIND_LEVEL}
        for watch in self._watches():
            key = f"{BLIND_LEVEL}:{watch.source}"
            reason = blind_reason(watch, now)
            if reason is not None and key not in showing:
                self.submit(make_event(BLIND_LEVEL, reason, received_at=now, source=WATCHDOG, sender=WATCHDOG, key=key))
            elif reason is None and key in showing:
                self.submit(make_event(BLIND_LEVEL, f"{watch.source} is back", received_at=now, source=WATCHDOG,
                                       sender=WATCHDOG, key=key, status="resolved"))
        self._schedule_tick()

    def _source_health_changed(self) -> None:
        self._watch_sources()
        self.activity.publish(Activity("sources"))

    def _watches(self) -> list[Watch]:
        return [Watch(s.name, s.settings.expect_every, s.health.last_event_at or self._started_at,
                      s.health.disconnected_since) for s in self.sources.values()]

    def _changed(self, since: float | None) -> None:
        """Wake every lamp; `since` is when the event behind the change was received, for the latency metric."""
        signals = (*self.signals.values(), *self.lamp_tests.values())
        for controller in self.lamps.values():
            controller.update(signals, since)
        self.metrics.active_signals.set(len(self.signals))
        self._schedule_tick()
        self._fall_back()

    def _fall_back(self) -> None:
        """A visible signal none of whose lamps can be reached (offline, or showing something else)
        uses its level's fallback, once: other lamps and sirens join it, notifications are posted."""
        now = self.clock.now()
        self._fell_back &= self.signals.keys()
        stranded = [s for s in self.signals.values() if s.event_id not in self._fell_back and s.visible_at(now)
                    and self.levels[s.level].fallback and not any(self._reachable(lamp) for lamp in s.lamps)]
        for signal in stranded:
            self._fell_back.add(signal.event_id)
            level = self.levels[signal.level]
            outputs = frozenset(name for name in level.fallback_outputs if name in self.lamps)
            self.signals[signal.event_id] = replace(signal, fallbacks=outputs)
            why = "; ".join(f"{lamp}: {self.lamps[lamp].problem or 'cannot be reached'}"
                            for lamp in sorted(signal.lamps) if lamp in self.lamps)
            log.warning("%s %r reaches none of its lamps (%s); using its fallback", signal.level, signal.title, why)
            self.fallback_notices.post(signal.level, Announcement(
                f"{signal.level}: {signal.title}",
                f"Lamplighter cannot show this on its lamps ({why}). Event {signal.event_id}."), signal.event_id)
            self.activity.publish(Activity("fallback", signal.event_id))
        if stranded:
            self._changed(since=None)

    def _reachable(self, lamp: str) -> bool:
        controller = self.lamps.get(lamp)
        return controller is not None and controller.reachable

    def _schedule_tick(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        now = self.clock.now()
        watchdog = [d for w in self._watches() if (d := blind_deadline(w)) is not None and d > now]
        signals = (*self.signals.values(), *self.lamp_tests.values())
        deadline = min(filter(None, [next_deadline(signals, now), *watchdog]), default=None)
        if deadline is not None:
            self._timer = asyncio.get_running_loop().call_later(deadline - now, self.tick)

    # ---- lamps -----------------------------------------------------------------------------

    def lamp_views(self) -> list[LampView]:
        return [controller.view() for controller in self.lamps.values()]

    def watch(self, lamp: str) -> asyncio.Queue[LampView | None]:
        """A queue with the lamp's view now, then on every change; None when the service stops."""
        queue = self.lamp_changes[lamp].subscribe()
        queue.put_nowait(self.lamps[lamp].view())
        return queue

    def unwatch(self, lamp: str, queue: asyncio.Queue[LampView | None]) -> None:
        self.lamp_changes[lamp].unsubscribe(queue)

    def end_watches(self) -> None:
        """Tell every listener the service is stopping, so open pages let go at once."""
        for changes in self.lamp_changes.values():
            changes.close()
        self.activity.close()

    def _lamp_changed(self, view: LampView) -> None:
        self.metrics.lamp_online.labels(view.name).set(1 if view.online else 0)
        self.lamp_changes[view.name].publish(view)
        if not view.online or not view.reached:
            self._fall_back()

    def _lamp_applying(self, lamp: str, since: float | None) -> None:
        self.metrics.lamp_applies.labels(lamp).inc()
        if since is not None:
            self.metrics.event_to_apply.observe(max(0.0, self.clock.now() - since))

