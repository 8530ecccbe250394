"""Incidents: the router, the active signals and the journal, kept in step.

Every change to what is active goes through here: an event (or a batch of them, one
Alertmanager notification) routed and stored in one transaction, an acknowledgement, a
snooze, a hold that ran out. Each either is written to the journal and then takes effect,
or raises StoreError and changes nothing; the one exception is expiry, which is the truth
whether or not the disk has room: an expired signal leaves the active set at once and its
end is written when the journal takes writes again (retried with backoff).
`on_change(since)` tells the service that the lamps need a look.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import replace

from lamplighter.backoff import delay
from lamplighter.config import GuardsConfig
from lamplighter.errors import StoreError
from lamplighter.model import Event, Level, Outcome, Receipt, Signal, SignalAction, StoredEvent
from lamplighter.rules.active import ActiveSignals
from lamplighter.rules.reconcile import expired, next_deadline
from lamplighter.rules.router import Router, Seen, Snooze, Verdict
from lamplighter.service.activity import Activity
from lamplighter.service.broadcast import Broadcast
from lamplighter.service.metrics import Metrics
from lamplighter.service.reload import retarget
from lamplighter.store import Store, StoredSignal

log = logging.getLogger(__name__)

SNOOZE_SETTING = "snooze"
LEVEL_REMOVED = "its level was removed from the configuration"
TITLE_CHARS = 120  # of an event's title in its log line

OnChange = Callable[[float | None], None]


class Incidents:
    """The active signals, the router's memory and the journal, changed only together."""

    def __init__(self, store: Store, levels: dict[str, Level], lamps: frozenset[str], guards: GuardsConfig,
                 activity: Broadcast[Activity], metrics: Metrics, on_change: OnChange) -> None:
        self.store = store
        self.levels = levels
        self.router = Router(levels, lamps, guards)
        self.signals = ActiveSignals()
        self._lamps = lamps
        self._guards = guards
        self._activity = activity
        self._metrics = metrics
        self._on_change = on_change
        self._unwritten_ends: dict[int, float] = {}  # expired signals the journal has not recorded yet
        self._end_failures = 0
        self._retry_ends_at: float | None = None

    # ---- start ----------------------------------------------------------------------------------

    def resume(self, now: float, outputs: frozenset[str]) -> None:
        """What the journal remembers: active signals (those that ran out meanwhile end now),
        the deduplication memory and the global snooze."""
        stale: list[int] = []
        for stored in self.store.active_signals():
            signal = self._signal_from_store(stored, outputs)
            if signal is None or not signal.active_at(now):
                stale.append(stored.event_id)
            else:
                self.signals[signal.event_id] = signal
        if stale:
            self.store.end_signals(stale, now, "expired")
        if self.signals:
            log.info("resumed %d active signal(s) from the store", len(self.signals))
        window = max(self._guards.dedup_window, self._guards.keyed_dedup_window)
        for level, key, at, keyed in self.store.seen_since(now - window):
            if now - at < self.router.window(keyed):
                self.router.last_seen[(level, key)] = Seen(at, keyed)
        snooze = self.store.setting(SNOOZE_SETTING)
        if snooze is not None and snooze["until"] > now:
            self.router.snooze = Snooze(until=snooze["until"], by=snooze["by"])

    def _signal_from_store(self, stored: StoredSignal, outputs: frozenset[str]) -> Signal | None:
        level = self.levels.get(stored.level)
        lamps = stored.lamps & outputs
        if level is None or not lamps:
            return None
        sirens = frozenset(level.sirens or ()) & outputs
        escalates_at = stored.started_at + level.escalate_after if sirens else None
        return Signal(stored.event_id, stored.level, stored.key, stored.title, level.priority, level.look,
                      frozenset(lamps), stored.started_at, stored.expires_at, stored.snoozed_until,
                      sirens, escalates_at)

    # ---- events ---------------------------------------------------------------------------------

    def submit_many(self, events: Sequence[Event], now: float) -> list[Receipt]:
        """Route and store events exactly as one after another, in one journal transaction (one fsync,
        however big the batch). Raises StoreError and changes nothing if the store fails."""
        # A lone event changes the memory only once it is stored (bar the rate-limit token it took, as
        # ever); in a batch the events before a failed one already did, so a batch keeps a copy to put back.
        before = (self.router.memory(), dict(self.signals)) if len(events) > 1 else None
        try:
            with self.store.transaction():
                stored = [(event, *self._store(event, now)) for event in events]
        except BaseException:
            if before is not None:
                self.router.restore(before[0])
                self.signals.clear()
                self.signals.update(before[1])
            raise
        for event, event_id, verdict in stored:
            log_event(event_id, event, verdict.outcome, verdict.reasons, verdict.new_signal or verdict.refreshed)
        receipts = [self._receipt(event, event_id, verdict) for event, event_id, verdict in stored]
        changed = [event.received_at for event, _, v in stored if v.new_signal or v.ended or v.refreshed]
        if changed:
            self._on_change(min(changed))
        return receipts

    def _store(self, event: Event, now: float) -> tuple[int, Verdict]:
        """Route an event against what the events before it left, write it, and remember the verdict."""
        verdict = self.router.route(event, self.signals, now)
        event_id = self.store.record_event(
            event, verdict.outcome, verdict.reasons,
            signal_id=verdict.signal_id, new_signal=verdict.new_signal, refreshed=verdict.refreshed,
            ended=verdict.ended, end_reason="resolved" if verdict.outcome is Outcome.RESOLVED else "superseded",
        )
        self.router.commit(event, verdict)
        self._apply_verdict(event_id, verdict)
        return event_id, verdict

    def _receipt(self, event: Event, event_id: int, verdict: Verdict) -> Receipt:
        self._metrics.events.labels(event.level, verdict.outcome.value).inc()
        self._activity.publish(Activity("event", event_id))
        signal_id = event_id if verdict.new_signal else verdict.signal_id
        return Receipt(event_id, verdict.outcome, verdict.reasons, verdict.retry_after, signal_id)

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
        log_event(event_id, event, Outcome.REJECTED, (reason,), None)
        self._metrics.events.labels(event.level, Outcome.REJECTED.value).inc()
        self._activity.publish(Activity("event", event_id))
        return Receipt(event_id, Outcome.REJECTED, (reason,), None, None)

    def _signal_of(self, event_id: int) -> int | SignalAction:
        """The active signal an event started or refreshed, or why there is none."""
        event = self.store.event(event_id)
        if event is None:
            return SignalAction.UNKNOWN
        signal_id = event.signal_id or event_id
        return signal_id if signal_id in self.signals else SignalAction.NOT_ACTIVE

    # ---- acknowledgements and snoozes -----------------------------------------------------------

    def acknowledge(self, event_id: int, by: str, now: float) -> SignalAction:
        """End the signal an event started or refreshed; the lamp restores if nothing else is active."""
        signal_id = self._signal_of(event_id)
        if isinstance(signal_id, SignalAction):
            return signal_id
        self.store.end_signals([signal_id], now, f"acknowledged by {by}")
        del self.signals[signal_id]
        self._on_change(None)
        self._activity.publish(Activity("acknowledged", signal_id))
        return SignalAction.DONE

    def snooze_signal(self, event_id: int, until: float) -> SignalAction:
        """Hide a signal from the lamps until `until`; it shows again if it is still active then."""
        signal_id = self._signal_of(event_id)
        if isinstance(signal_id, SignalAction):
            return signal_id
        self._snooze([self.signals[signal_id]], until)
        self._activity.publish(Activity("snoozed", signal_id))
        return SignalAction.DONE

    def snooze_all(self, until: float, by: str) -> Snooze:
        """Keep everything without the quiet-hours bypass dark until `until`, new events included."""
        snooze = Snooze(until=until, by=by)
        self.store.set_setting(SNOOZE_SETTING, {"until": snooze.until, "by": by})
        self.router.snooze = snooze
        bypass = {name for name, level in self.levels.items() if level.quiet_hours_bypass}
        self._snooze([s for s in self.signals.values() if s.level not in bypass], snooze.until)
        self._activity.publish(Activity("snooze"))
        return snooze

    def end_snooze(self) -> None:
        """Lift the global snooze and every signal's snooze: the lamps show what is active."""
        self.store.set_setting(SNOOZE_SETTING, None)
        self.router.snooze = None
        self._snooze(list(self.signals.values()), None)
        self._activity.publish(Activity("snooze"))

    def snooze(self, now: float) -> Snooze | None:
        """The global snooze, while it lasts."""
        snooze = self.router.snooze
        return snooze if snooze is not None and snooze.until > now else None

    def _snooze(self, signals: list[Signal], until: float | None) -> None:
        self.store.snooze_signals([s.event_id for s in signals], until)
        for signal in signals:
            self.signals[signal.event_id] = replace(signal, snoozed_until=until)
        self._on_change(None)

    # ---- reloading ------------------------------------------------------------------------------

    def reconfigure(self, levels: dict[str, Level], lamps: frozenset[str], sirens: frozenset[str],
                    guards: GuardsConfig, now: float) -> list[int]:
        """Take a reloaded configuration. Every active signal follows its level's new look, lamps and sirens;
        a signal whose level is gone ends. The router's memory and the global snooze carry over (the rate
        buckets start afresh if the rates changed). Journal first: StoreError changes nothing. Returns
        the ids of the signals that ended."""
        moved = {event_id: retarget(signal, self.levels.get(signal.level), levels[signal.level], self._lamps,
                                    lamps, sirens)
                 for event_id, signal in self.signals.items() if signal.level in levels}
        ended = [event_id for event_id in self.signals if event_id not in moved]
        with self.store.transaction():
            self.store.end_signals(ended, now, LEVEL_REMOVED)
            self.store.set_signal_lamps({event_id: signal.lamps for event_id, signal in moved.items()
                                         if signal.lamps != self.signals[event_id].lamps})
        router = Router(levels, lamps, guards, snooze=self.router.snooze)
        router.restore(self.router.memory())
        if guards.rate_limit != self._guards.rate_limit:
            router.buckets = {}
        self.router, self.levels, self._lamps, self._guards = router, levels, lamps, guards
        self.signals.clear()
        self.signals.update(moved)
        for event_id in ended:
            self._activity.publish(Activity("ended", event_id))
        return ended

    # ---- time -----------------------------------------------------------------------------------

    def expire(self, now: float) -> list[Signal]:
        """End the signals whose hold has run out by `now`, and write what the journal still owes."""
        ended = expired(self.signals.values(), now)
        for signal in ended:
            del self.signals[signal.event_id]
            self._unwritten_ends[signal.event_id] = now
            self._activity.publish(Activity("expired", signal.event_id))
        if self._unwritten_ends and (self._retry_ends_at is None or now >= self._retry_ends_at):
            self._write_ends(now)
        return ended

    def next_deadline(self, now: float) -> float | None:
        """The earliest future hold, snooze or escalation edge, or the next retry of a failed write."""
        retry = self._retry_ends_at if self._unwritten_ends else None
        return min((t for t in (next_deadline(self.signals.values(), now), retry) if t is not None), default=None)

    def _write_ends(self, now: float) -> None:
        """Record expired signals in the journal; on a store error try again later, with backoff."""
        by_time: dict[float, list[int]] = {}
        for event_id, at in self._unwritten_ends.items():
            by_time.setdefault(at, []).append(event_id)
        try:
            for at, event_ids in by_time.items():
                self.store.end_signals(event_ids, at, "expired")
                for event_id in event_ids:
                    del self._unwritten_ends[event_id]
        except StoreError as exc:
            self._end_failures += 1
            self._retry_ends_at = now + delay(self._end_failures)
            if self._end_failures == 1:
                log.warning("%s; the end of %d expired signal(s) will be written when it works again",
                            exc, len(self._unwritten_ends))
            return
        if self._end_failures:
            written = sum(map(len, by_time.values()))
            log.warning("the journal takes writes again; %d expired signal(s) recorded", written)
        self._end_failures, self._retry_ends_at = 0, None

    # ---- reading the journal --------------------------------------------------------------------

    def event(self, event_id: int) -> StoredEvent | None:
        return self.store.event(event_id)


def log_event(event_id: int, event: Event, outcome: Outcome, reasons: Sequence[str], signal: Signal | None) -> None:
    """The one INFO line per stored event: id, level, outcome, lamps, source and title (never a secret:
    events carry none); the same as structured fields for JSON logs."""
    lamps = sorted(signal.lamps) if signal is not None else []
    why = f" ({'; '.join(reasons)})" if reasons else ""
    log.info("event %d: %s %s%s from %s: %s%s", event_id, event.level, outcome.value,
             f" on {', '.join(lamps)}" if lamps else "", event.source, event.title[:TITLE_CHARS], why,
             extra={"event_id": event_id, "event_level": event.level, "outcome": outcome.value, "lamps": lamps,
                    "source": event.source, "reasons": list(reasons)})
