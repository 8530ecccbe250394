"""The service facade every face (HTTP API, CLI, sources) talks to.

An event travels: `submit` routes it, stores it with its outcome in one transaction,
commits the verdict to the in-memory active signals, and wakes the lamp controllers.

Time: one task (`_keep_time`) wakes at the earliest deadline (a hold, a snooze, an
escalation, a lamp test, the dead-man's switch, a retry of a failed journal write), ends
whatever has expired by then, and always schedules the next wake-up, so a wake-up that
comes early or late changes nothing. An end the journal could not write is retried with
backoff; the lamps and views follow the truth meanwhile.

Reload (`reload`, on SIGHUP or POST /api/reload): the file is checked first, the new parts are
built, then swapped in at once on the loop (no await between, so every event is routed by the
old or the new configuration); removed lamps are put back to their snapshot afterwards and
replaced sources restart (what changes how: reload.py).

The parts, each in its own module: incidents.py (router, active signals, journal),
fleet.py (lamp controllers, lamp tests, watches), watchdog.py (the dead-man's switch),
fallback.py. Stopping is bounded: every task is asked to stop by a flag and a cancel, and
whatever has not ended within its bound (a device library that swallows the cancel) is
left behind with a warning.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from lamplighter import i18n
from lamplighter.announce import Announcements
from lamplighter.announce.text import where_text
from lamplighter.config import Config, ConfigProblems, LoadedConfig, load_config
from lamplighter.drivers.base import Driver
from lamplighter.drivers.phone import build_siren
from lamplighter.drivers.registry import build_driver
from lamplighter.errors import ConfigError, LampUrlError, StoreError
from lamplighter.model import Clock, Event, LampView, Level, Receipt, Signal, SignalAction, StoredEvent, SystemClock
from lamplighter.rules.active import ActiveSignals
from lamplighter.rules.away import Away, summarize
from lamplighter.rules.placement import Placement, place, winners_at
from lamplighter.rules.quiet import last_quiet_window
from lamplighter.rules.router import Router, Snooze
from lamplighter.service.activity import Activity
from lamplighter.service.broadcast import Broadcast
from lamplighter.service.digest import Digest, build_digest_announcers
from lamplighter.service.durability import Durability
from lamplighter.service.fallback import Fallback
from lamplighter.service.fleet import LampFleet, Retired
from lamplighter.service.health import Health, assess
from lamplighter.service.incidents import Incidents
from lamplighter.service.intake import Intake
from lamplighter.service.lamp import LampController
from lamplighter.service.metrics import Metrics
from lamplighter.service.outputs import RemoteOutputs
from lamplighter.service.reload import Changes, diff_configs, in_effect
from lamplighter.service.retention import Retention
from lamplighter.service.tasks import end_tasks
from lamplighter.service.watchdog import DeadMansSwitch
from lamplighter.sources import build_sources
from lamplighter.sources.base import Source
from lamplighter.store import Store

log = logging.getLogger(__name__)

DATABASE_NAME = "lamplighter.db"
STOP_BOUND = 1.0  # seconds the lamp and source tasks get to end after a stop, then they are left behind
PICTURE_LABELS = frozenset({"snapshot", "snapshot_url"})  # labels of events that have a picture (camera, Frigate)
AWAY_LIMIT = 10_000  # events looked at for "while you were away"
LONGEST_WAIT = 60.0  # look at the deadlines at least this often, so a jump of the wall clock is noticed
RESTORE_BOUND = 5.0  # seconds a removed lamp gets to go back to its snapshot (calm interval, pacing, read-back)
NO_FILE = "running on the embedded default configuration: there is no file to reload (start with -c FILE)"


def validate(config: Config) -> list[tuple[str, str]]:
    """Problems a running service would hit that the file's schema cannot see: URLs, source settings."""
    problems = _lamp_problems(config)
    try:
        sources = build_sources(_source_entries(config), SystemClock())
        levels = config.resolved_levels()
        Announcements.build(_announce_specs(levels), sources)
        Announcements.build(_fallback_specs(levels), sources, field="fallback")
        build_digest_announcers(config.digest, sources)
    except ConfigError as exc:
        problems.extend(exc.problems)
    return problems


def load_checked(path: Path | None) -> LoadedConfig:
    """Read and check a configuration as `lamplighter check` does; ConfigError lists every problem found,
    each placed as `FILE:LINE path`."""
    try:
        loaded = load_config(path)
    except ConfigProblems as exc:  # the schema's problems, and what the rest of the file still shows
        further = exc.further(validate(exc.partial.config)) if exc.partial is not None else []
        raise ConfigError(exc.problems + further) from None
    problems = [(loaded.place(where), message) for where, message in validate(loaded.config)]
    if problems:
        raise ConfigError(problems)
    return loaded


def _announce_specs(levels: Mapping[str, Level]) -> dict[str, tuple[str, ...]]:
    return {name: level.announce for name, level in levels.items()}


def _fallback_specs(levels: Mapping[str, Level]) -> dict[str, tuple[str, ...]]:
    return {name: level.fallback_notices for name, level in levels.items()}


def _source_entries(config: Config) -> list[dict[str, Any]]:
    return [entry.model_dump() for entry in config.sources]


def _lamp_problems(config: Config) -> list[tuple[str, str]]:
    return [(f"{kind}.{name}", str(exc)) for kind, name, url in _outputs(config) if (exc := _url_problem(kind, url))]


def _outputs(config: Config) -> list[tuple[str, str, str]]:
    """Every output the service drives: (`lamps` or `sirens`, name, URL)."""
    return [("lamps", name, url) for name, url in config.lamps.items()] + [
        ("sirens", name, url) for name, url in config.sirens.items()]


def _url_problem(kind: str, url: str) -> LampUrlError | None:
    try:
        _build_output(kind, url)
    except LampUrlError as exc:
        return exc
    return None


def _build_output(kind: str, url: str) -> Driver:
    """A lamp's driver; a siren may also be a phone (an Apprise URL: ntfy, Pushover, Telegram)."""
    return build_siren(url) if kind == "sirens" else build_driver(url)


def build_drivers(config: Config) -> dict[str, Driver]:
    problems = _lamp_problems(config)
    if problems:
        raise ConfigError(problems)
    return {name: _build_output(kind, url) for kind, name, url in _outputs(config)}


class Service:
    """Everything Lamplighter does, behind one facade. Use `async with service.running():`.

    It composes the parts and keeps them in step: `incidents` (router, active signals,
    journal), `fleet` (lamp controllers, tests, watches), the dead-man's switch and the
    fallback, and owns the one task that keeps time.
    """

    def __init__(self, config: Config, clock: Clock | None = None, drivers: Mapping[str, Driver] | None = None,
                 store: type[Store] = Store, config_path: Path | None = None,
                 remote: RemoteOutputs | None = None) -> None:
        self.config = config
        self.config_path = config_path  # what `reload` reads again; None: the embedded default
        self.remote = remote  # a hub's rooms: outputs driven through the broker
        i18n.set_default(config.locale)  # replies and announcements speak the configured language
        self.clock = clock or SystemClock()
        self.levels: dict[str, Level] = config.resolved_levels()
        self.metrics = Metrics()
        self.activity: Broadcast[Activity] = Broadcast()
        self.store = store(config.state_dir / DATABASE_NAME)
        self.fleet = LampFleet(drivers if drivers is not None else build_drivers(config), config.sirens, self.store,
                               self.clock, self.metrics, on_problem=self._fall_back)
        self.incidents = Incidents(self.store, self.levels, frozenset(config.lamps) | self._remote_names,
                                   config.guards, self.activity,
                                   self.metrics, on_change=self._changed)
        self.sources: dict[str, Source] = build_sources(_source_entries(config), self.clock)
        for source in self.sources.values():
            source.state_dir = config.state_dir / "sources" / source.name
        self.watchdog = DeadMansSwitch(self.sources, self.clock.now())
        self.announcements = Announcements.build(_announce_specs(self.levels), self.sources)
        self.fallback = Fallback(self.levels, Announcements.build(_fallback_specs(self.levels), self.sources,
                                                                  field="fallback"), self.activity)
        self.retention = Retention(self.store, config.retention, config.guards, self.clock.now())
        self.digest = Digest(config.guards.quiet_hours, build_digest_announcers(config.digest, self.sources),
                             self.clock.now())
        self._deadlines_changed = asyncio.Event()
        self.durability = Durability(self.store)
        self.intake = Intake(self.submit_many, self.durability.durable)
        self._stopping = False
        self._tasks: list[asyncio.Task[None]] = []
        self._source_tasks: dict[str, asyncio.Task[None]] = {}
        self._reload_lock = asyncio.Lock()
        self._started_at = self.clock.now()  # where signals from before this were shown is not known

    # what tests and the CLI look at directly
    @property
    def signals(self) -> ActiveSignals:
        return self.incidents.signals

    @property
    def router(self) -> Router:
        return self.incidents.router

    @property
    def lamps(self) -> dict[str, LampController]:
        return self.fleet.lamps

    @property
    def lamp_tests(self) -> dict[str, Signal]:
        return self.fleet.tests

    @property
    def lamp_changes(self) -> dict[str, Broadcast[LampView]]:
        return self.fleet.changes

    # ---- lifecycle -------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Service]:
        await self.start()
        try:
            yield self
        finally:
            await self.stop()

    async def start(self) -> None:
        """Resume what the journal remembers, then start the lamps, the sources and the clock."""
        now = self._started_at = self.clock.now()
        self.fleet.resume(self.store.snapshots())
        self.incidents.resume(now, self.fleet.names | self._remote_names)
        self.watchdog.watching_since = now
        for name, at in self.store.last_event_per_source().items():
            if name in self.sources:
                self.sources[name].health.last_event_at = at
        self.fleet.start()
        for source in self.sources.values():
            self._start_source(source)
        self._changed(since=None)
        self._watch_sources()  # a source silent since before the restart is blind now, not at its next event
        self._tasks = [asyncio.create_task(self._keep_time(), name="deadlines")]

    def _start_source(self, source: Source) -> None:
        loop = asyncio.get_running_loop()

        def health_changed() -> None:  # sources may report from their own threads
            loop.call_soon_threadsafe(self._source_health_changed)

        source.on_health_change = health_changed
        source.facade = self
        self._source_tasks[source.name] = asyncio.create_task(source.run(self.submit), name=f"source {source.name}")

    async def stop(self) -> None:
        """Stop the tasks, close the drivers and the store, all within a bound; safe to call twice."""
        self._stopping = True
        self._deadlines_changed.set()
        tasks, self._tasks = [*self._tasks, *self._source_tasks.values()], []
        self._source_tasks = {}
        await end_tasks([*tasks, *self.fleet.stop_tasks(), *self.retention.tasks()], STOP_BOUND)
        await self.fleet.close()
        await self.announcements.close()
        await self.fallback.notices.close()
        await self.digest.announcements.close()
        self.store.close()

    # ---- events ----------------------------------------------------------------------------

    def submit(self, event: Event) -> Receipt:
        """Route, store, then show. Raises StoreError (and changes nothing) if the store fails."""
        return self.submit_many([event])[0]

    def submit_many(self, events: Sequence[Event]) -> list[Receipt]:
        """Submit the events of one request as `submit` would one after another, in one journal
        transaction. Raises StoreError and changes nothing if the store fails."""
        receipts = self.incidents.submit_many(events, self.clock.now())
        heard = [event for event in events if event.source in self.sources]
        for event in heard:
            self.sources[event.source].health.last_event_at = event.received_at
        if heard:
            self._watch_sources()
        if self.retention.stored(len(events), self.clock.now()):
            self._deadlines_changed.set()
        for event, receipt in zip(events, receipts, strict=True):
            where = where_text(self.placement(receipt.signal_id)) if receipt.signal_id is not None else None
            picture = partial(self.picture, receipt.id) if PICTURE_LABELS & event.labels.keys() else None
            self.announcements.announce(event.with_id(receipt.id), receipt, where, picture)  # only `shown`; at once
        return receipts

    async def durable(self) -> None:
        """Return once every journal write so far is on the disk (a power cut keeps it); StoreError if not.
        A face answers a change (ack, snooze) only after this."""
        await self.durability.durable()

    async def accept(self, events: Sequence[Event]) -> list[Receipt]:
        """`submit_many` for the async faces: requests that arrive together share one commit (one fsync),
        a big batch goes in slices that never hold the loop long (service/intake.py). Raises StoreError."""
        return await self.intake.accept(events)

    def record_rejected(self, event: Event, reason: str) -> Receipt:
        """Store an event a source refused to route (a spoofed mail), so /api/events shows why."""
        return self.incidents.record_rejected(event, reason)

    def acknowledge(self, event_id: int, by: str) -> SignalAction:
        """End the signal an event started or refreshed; the lamp restores if nothing else is active."""
        return self.incidents.acknowledge(event_id, by, self.clock.now())

    def snooze_signal(self, event_id: int, seconds: float) -> SignalAction:
        """Hide a signal from the lamps for a while; it shows again if it is still active then."""
        return self.incidents.snooze_signal(event_id, self.clock.now() + seconds)

    def snooze_all(self, seconds: float, by: str) -> Snooze:
        """Keep everything without the quiet-hours bypass dark for a while, new events included."""
        return self.incidents.snooze_all(self.clock.now() + seconds, by)

    def end_snooze(self) -> None:
        """Lift the global snooze and every signal's snooze: the lamps show what is active."""
        self.incidents.end_snooze()

    def test_lamp(self, lamp: str, level_name: str, seconds: float) -> Signal:
        """Show a level's look on one lamp or siren for `seconds`, then put it back as it was.

        A test is not an event: nothing is stored, announced or escalated. EventError for an
        unknown level, KeyError for an unknown lamp, LampBusy while the lamp shows a signal.
        """
        test = self.fleet.test(lamp, self.levels.get(level_name), level_name, self.levels, seconds)
        self._changed(since=None)
        return test

    # ---- what is showing: acknowledge or snooze it, and where a signal is -----------------------

    def top_signals(self) -> list[Signal]:
        """The visible signals, the one a lamp shows first (highest priority, then newest) at the front."""
        now = self.clock.now()
        visible = [s for s in self.signals.values() if s.visible_at(now)]
        return sorted(visible, key=lambda s: (s.priority, s.started_at, s.event_id), reverse=True)

    def acknowledge_showing(self, by: str, everything: bool = False) -> list[Signal]:
        """Acknowledge the top signal (or, `everything`, every active one, snoozed too); the ones it ended."""
        chosen = list(self.signals.values()) if everything else self.top_signals()[:1]
        return [s for s in chosen if self.acknowledge(s.event_id, by) is SignalAction.DONE]

    def snooze_showing(self, seconds: float) -> Signal | None:
        """Snooze the top signal for `seconds` (it shows again then if still active); None if nothing shows."""
        top = self.top_signals()[:1]
        if not top or self.snooze_signal(top[0].event_id, seconds) is not SignalAction.DONE:
            return None
        return self.signals.get(top[0].event_id, top[0])

    def placement(self, signal_id: int) -> Placement:
        """Where a signal is now: on which lamps, behind what, which of its lamps are down, ever shown where."""
        return self.placements([signal_id])[signal_id]

    def placements(self, signal_ids: Sequence[int]) -> dict[int, Placement]:
        """`placement` of many signals at once (what each lamp should show is worked out once)."""
        now = self.clock.now()
        winners = winners_at(self.signals.values(), self.fleet.names, now)
        return {signal_id: place(self.signals.get(signal_id), winners, self.fleet.reachable, self.fleet.problem, now,
                                 self.fleet.shown_on(signal_id), ever_known=self._ever_known(signal_id))
                for signal_id in signal_ids}

    def _ever_known(self, signal_id: int) -> bool:
        """Whether the lamps that showed a signal are known: not for one that began before this start."""
        if signal_id in self.signals:
            return True
        record = self.event_record(signal_id)
        return record is None or record.received_at >= self._started_at

    def where_words(self, signal_id: int) -> tuple[str, str]:
        """Where a signal is, as (state, the one sentence every face shows), e.g. ("queued", "Queued behind...")."""
        placement = self.placement(signal_id)
        return placement.where.value, where_text(placement)

    async def picture(self, event_id: int) -> bytes | None:
        """The snapshot behind an event (a door camera's), asked of the source that made it; None if none."""
        record = self.event_record(event_id)
        source = self.sources.get(record.source) if record is not None else None
        return None if record is None or source is None else await source.picture(record.labels)

    def away(self, since: float, until: float | None = None) -> Away:
        """What happened from `since` until `until` (default now): counts by outcome and the notable events."""
        end = self.clock.now() if until is None else until
        return summarize(self.store.events_since(since, AWAY_LIMIT), since, end)

    def last_quiet_window(self) -> tuple[float, float] | None:
        """The quiet-hours window that ended most recently (within two days), as (start, end)."""
        return last_quiet_window(self.config.guards.quiet_hours, self.clock.now())

    # ---- reading: what the faces show ---------------------------------------------------------

    def event_record(self, event_id: int) -> StoredEvent | None:
        """A stored event with its outcome and reasons (what `why` answers from)."""
        return self.incidents.event(event_id)

    def recent_events(self, limit: int) -> list[StoredEvent]:
        return self.store.recent_events(limit)

    def find_events(self, equal: dict[str, str], limit: int) -> list[StoredEvent]:
        """The newest events whose columns have the given values, e.g. {"level": "911", "sender": "ci"}."""
        return self.store.find_events(equal, limit)

    def event_values(self, column: str, limit: int) -> list[str]:
        return self.store.event_values(column, limit)

    def events_per_hour(self, since: float) -> list[tuple[float, str, int]]:
        return self.store.events_per_hour(since)

    def signal_end(self, event_id: int) -> tuple[float, str] | None:
        """When and why a signal ended, or None while it is active (or unknown)."""
        return self.store.signal_end(event_id)

    def snooze(self) -> Snooze | None:
        """The global snooze, while it lasts."""
        return self.incidents.snooze(self.clock.now())

    def lamp_views(self) -> list[LampView]:
        return self.fleet.views()

    def health(self) -> Health:
        """`ok`, or `degraded` with a reason per lamp offline and per source disconnected or blind."""
        return assess(self.fleet.views(), self.sources, self.watchdog.watches(), self.clock.now())

    def watch(self, lamp: str) -> asyncio.Queue[LampView | None]:
        """A queue with the lamp's view now, then on every change; None when the service stops."""
        return self.fleet.watch(lamp)

    def unwatch(self, lamp: str, queue: asyncio.Queue[LampView | None]) -> None:
        self.fleet.unwatch(lamp, queue)

    def end_watches(self) -> None:
        """Tell every listener the service is stopping, so open pages let go at once."""
        self.fleet.end_watches()
        self.activity.close()

    # ---- reloading the configuration -------------------------------------------------------------

    async def reload(self) -> Changes:
        """Read the configuration file again and swap it in without a restart (SIGHUP, `lamplighter reload`).

        The file is checked first: ConfigError lists every problem and nothing changes. Then the new
        parts are built and swapped in at once, on the loop, so every event is routed by either the
        old or the new configuration. Lamps and sources whose settings are unchanged keep running
        untouched; removed lamps go back to their snapshot, then close (service/reload.py says what
        changes how). StoreError, if the journal refuses the signals' new lamps: nothing changes.
        """
        async with self._reload_lock:
            try:
                if self.config_path is None:
                    raise ConfigError([("", NO_FILE)])
                new = self._build(load_checked(self.config_path).config)
            except ConfigError as exc:
                log.error("the configuration was not reloaded: %d problem(s); the running one stays", len(exc.problems))
                for place, message in exc.problems:
                    log.error("%s: %s", place, message)
                raise
            try:
                retired, stopping, closing = self._swap(new)
            except StoreError as exc:
                log.error("the configuration was not reloaded: %s", exc)
                raise
            await self._settle(new, retired, stopping, closing)
            log.info("configuration reloaded from %s: %s", self.config_path, new.changes.summary())
            if new.changes.needs_restart:
                log.warning("restart the daemon to apply %s: they keep their running values until then",
                            ", ".join(new.changes.needs_restart))
            return new.changes

    def _build(self, config: Config) -> _NewParts:
        """Everything a checked configuration needs that the running service does not have yet."""
        built = build_sources(_source_entries(config), self.clock)
        changes = diff_configs(self.config, config, {n: s.settings for n, s in self.sources.items()},
                               {n: s.settings for n, s in built.items()})
        sources = {name: source if name in changes.sources_added or name in changes.sources_restarted
                   else self.sources[name] for name, source in built.items()}
        for name in (*changes.sources_added, *changes.sources_restarted):
            sources[name].state_dir = self.config.state_dir / "sources" / name
            if name in self.sources:
                sources[name].health.last_event_at = self.sources[name].health.last_event_at
        levels = config.resolved_levels()
        new_outputs = {*changes.lamps_added, *changes.lamps_replaced}
        return _NewParts(
            in_effect(self.config, config), changes, levels, sources,
            {name: build_driver(url) for _, name, url in _outputs(config) if name in new_outputs},
            Announcements.build(_announce_specs(levels), sources),
            Announcements.build(_fallback_specs(levels), sources, field="fallback"))

    def _swap(self, new: _NewParts) -> tuple[list[Retired], list[asyncio.Task[None]], list[Announcements]]:
        """Put the new parts in place, all at once (nothing here awaits). Returns what `_settle` ends."""
        changes, config = new.changes, new.config
        snapshots = self.store.snapshots()
        self.incidents.reconfigure(new.levels, frozenset(config.lamps), frozenset(config.sirens), config.guards,
                                   self.clock.now())  # the journal first: a StoreError changes nothing
        self.config, self.levels = config, new.levels
        retired = self.fleet.retire([*changes.lamps_removed, *changes.lamps_replaced])
        self.fleet.add({name: new.drivers[name] for name in changes.lamps_added}, config.sirens, snapshots)
        stopping = [self._source_tasks.pop(name) for name in (*changes.sources_removed, *changes.sources_restarted)
                    if name in self._source_tasks]
        self.sources.clear()  # in place: the dead-man's switch watches this mapping
        self.sources.update(new.sources)
        closing = [self.announcements, self.fallback.reconfigure(new.levels, new.notices)]
        self.announcements = new.announcements
        self._changed(since=None)
        return retired, stopping, closing

    async def _settle(self, new: _NewParts, retired: list[Retired], stopping: list[asyncio.Task[None]],
                      closing: list[Announcements]) -> None:
        """Put removed lamps back and end the old sources; then start replaced lamps and the new sources."""
        late, _ = await asyncio.gather(self.fleet.put_back(retired, RESTORE_BOUND), _end(stopping, closing))
        if self._stopping:
            return
        snapshots = self.store.snapshots() if late else {}
        self.fleet.add({name: new.drivers[name] for name in new.changes.lamps_replaced}, self.config.sirens,
                       {name: snapshots[name] for name in late if name in snapshots})
        for name in (*new.changes.sources_added, *new.changes.sources_restarted):
            self._start_source(self.sources[name])
        self.watchdog.release(new.changes.sources_removed, self.clock.now(), list(self.signals.values()), self.submit)
        self._changed(since=None)
        self._watch_sources()
        self.activity.publish(Activity("reloaded"))

    # ---- time ------------------------------------------------------------------------------

    def keeping_time(self) -> bool:
        """Whether the deadline task still runs (systemd's watchdog is pinged only while it does)."""
        return any(task.get_name() == "deadlines" and not task.done() for task in self._tasks)

    async def _keep_time(self) -> None:
        """The one timer: at every wake-up end what has expired by now, then wait for the next deadline."""
        while not self._stopping:
            now = self.clock.now()
            self._on_deadlines(now)
            self._deadlines_changed.clear()
            wake_at = self._next_deadline(now)
            pause = LONGEST_WAIT if wake_at is None else min(max(wake_at - now, 0.0), LONGEST_WAIT)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(pause):
                    await self._deadlines_changed.wait()

    def _on_deadlines(self, now: float) -> None:
        """End expired signals and lamp tests, and watch the sources."""
        if self.remote is not None:
            self.remote.update(self.signals.values(), now)  # presence and quiet hours move with time
        tests_ended = self.fleet.end_tests(now)
        expired = self.incidents.expire(now)
        self._log_never_shown(expired)
        if expired or tests_ended:
            self._changed(since=None)  # the lamps wake at snooze and escalation edges by themselves
        else:
            self._fall_back()  # a snooze that ended may have made a stranded signal visible
        self._watch_sources()
        self.digest.post_due(now, self.away)
        self._prune_if_due(now)

    def _log_never_shown(self, ended: Sequence[Signal]) -> None:
        """A signal whose hold ran out before any of its lamps applied it: say so, since nobody saw it
        (it was queued behind a stronger one, its lamps were offline, or they were too slow for its hold)."""
        for signal in ended:
            if signal.lamps and not self.fleet.shown_on(signal.event_id):
                log.info("event %d: its %s ended (hold over) before any of its lamps (%s) showed it",
                         signal.event_id, signal.level, ", ".join(sorted(signal.lamps)))

    def _prune_if_due(self, now: float) -> None:
        """Start a prune of old events in the background when one is due; its end wakes the timer."""
        task = self.retention.start_if_due(now)
        if task is not None:
            task.add_done_callback(lambda _task: self._deadlines_changed.set())

    def _next_deadline(self, now: float) -> float | None:
        """The earliest moment something governed by time changes."""
        moments = (self.incidents.next_deadline(now), self.fleet.next_deadline(now), self.watchdog.next_deadline(now),
                   self.retention.next_deadline(), self.digest.next_deadline(now),
                   self.remote.next_deadline(now) if self.remote is not None else None)
        return min((t for t in moments if t is not None and math.isfinite(t)), default=None)

    # ---- keeping the parts in step -----------------------------------------------------------

    def _changed(self, since: float | None) -> None:
        """Wake every lamp; `since` is when the event behind the change was received, for the latency metric."""
        self.fleet.update(self.signals.values(), since)
        if self.remote is not None:
            self.remote.update(self.signals.values(), self.clock.now())
        self.metrics.active_signals.set(len(self.signals))
        self._deadlines_changed.set()
        self._fall_back()

    def _fall_back(self) -> None:
        if self.fallback.apply(self.signals, self.clock.now(), self.fleet.names | self._remote_names,
                               self._reachable, self._problem):
            self._changed(since=None)

    # ---- remote outputs (a hub's rooms) --------------------------------------------------------

    @property
    def _remote_names(self) -> frozenset[str]:
        return self.remote.names if self.remote is not None else frozenset()

    def _reachable(self, output: str) -> bool:
        if self.remote is not None and output in self.remote.names:
            return self.remote.reachable(output)
        return self.fleet.reachable(output)

    def _problem(self, output: str) -> str:
        if self.remote is not None and output in self.remote.names:
            return self.remote.problem(output)
        return self.fleet.problem(output)

    def agent_views(self) -> list[dict[str, object]]:
        """A hub's room agents: last seen, lamps, lag (none without rooms)."""
        return self.remote.views() if self.remote is not None else []

    def remote_changed(self) -> None:
        """A remote output's health changed (a receipt, a silent agent): use fallbacks, look at the deadlines."""
        self._deadlines_changed.set()
        self._fall_back()

    def _watch_sources(self) -> None:
        self.watchdog.check(self.clock.now(), self.signals.values(), self.submit)
        self._deadlines_changed.set()

    def _source_health_changed(self) -> None:
        self._watch_sources()
        self.activity.publish(Activity("sources"))


async def _end(sources: list[asyncio.Task[None]], announcements: list[Announcements]) -> None:
    """End the sources and announcements a reload replaced."""
    await end_tasks(sources, STOP_BOUND)
    for old in announcements:
        await old.close()


@dataclass(frozen=True)
class _NewParts:
    """What a reload builds before it swaps anything: the configuration in effect and its new parts."""

    config: Config
    changes: Changes
    levels: dict[str, Level]
    sources: dict[str, Source]  # every source of the new file: the running ones that stay, and the new ones
    drivers: dict[str, Driver]  # the lamps and sirens added or replaced
    announcements: Announcements
    notices: Announcements
