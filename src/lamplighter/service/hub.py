"""The hub: the normal service (sources, router, journal) publishing each room's desired state over MQTT.

`Rooms` is the service's remote outputs (service/outputs.py): on every change it works out
each room's visible signals (rooms/routing.py), and for each room whose content changed it
publishes a RoomState with the next sequence number, retained on `state` with QoS 1 (the
broker queues it for an agent that is away). It keeps each agent's health from what the
agents send: the last message of any kind (a heartbeat every `heartbeat`), its lamps, and
its "applied" receipts. A room is reachable (for the level's fallback) while its agent spoke
within `silent_after`, has at least one lamp online, and confirmed every state that added
something to show within `apply_within`. An agent that goes silent (or whose will the
broker publishes) raises a `blind` event on the hub, resolved when it speaks again.

`Hub` does the I/O: one MqttLink (persistent session, QoS 1) for publishing and for the
agents' acks, receipts and health; an acknowledgement from a room acknowledges the event on
the hub, which ends the signal in every room. Presence comes from MQTT topics on that link and
from Home Assistant entities (service/presence.py); both feed the same hysteresis.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import aiomqtt

from lamplighter.backoff import Backoff
from lamplighter.config import Config, HubConfig
from lamplighter.errors import PayloadError, StoreError
from lamplighter.model import BLIND_LEVEL, Clock, Signal, SystemClock, make_event
from lamplighter.mqtt import BrokerAddress, MqttLink, Session, TlsFiles, keepalive_within
from lamplighter.rooms.protocol import (
    Ack,
    Applied,
    Health,
    Kind,
    LampHealth,
    RoomSignal,
    RoomState,
    Topics,
    decode,
    encode,
    room_signal,
    sequence,
    strongest,
)
from lamplighter.rooms.routing import (
    RoomPlan,
    Whereabouts,
    observe,
    presence_deadline,
    reported_room,
    signals_per_room,
    where,
)
from lamplighter.service.core import STOP_BOUND, Service
from lamplighter.service.presence import HassPresence
from lamplighter.service.tasks import end_tasks

log = logging.getLogger(__name__)

GENERATION_SETTING = "hub_generation"
HUB_SOURCE = "hub"
QUIET_LOOK = 60.0  # with per-room quiet hours, look again this often (their edges are minutes)
RESEND_PAUSE = 0.05  # after a failed publish, before asking the link for its connection again


def broker_address(hub: HubConfig, client_id: str, will: aiomqtt.Will | None = None) -> BrokerAddress:
    """The broker of `hub:` with a persistent session under `client_id`; a dead connection is found within
    about `silent_after`, on both ends (the hub's own link too)."""
    host, port, tls = hub.address
    files = TlsFiles(str(hub.ca_file or ""), str(hub.cert_file or ""), str(hub.key_file or ""))
    return BrokerAddress(host, port, hub.username or "", hub.password.get_secret_value() if hub.password else "",
                         tls, Session(client_id, int(hub.session_expiry)), will, files,
                         keepalive=keepalive_within(hub.silent_after))


def silent_key(room: str) -> str:
    """The key of the blind event of a room whose agent is silent; every other room shows it, not that one
    (by the time that room hears anything again, its agent speaks and the event is resolved)."""
    return f"agent:{room}"


@dataclass
class AgentHealth:
    """What the hub knows about one room's agent."""

    room: str
    last_seen: float  # the hub's clock; the hub's start for an agent never heard (it gets silent_after)
    online: bool = True  # its last health said online (a will says offline)
    heard: bool = False
    lamps: list[LampHealth] = field(default_factory=list)
    published_seq: int | None = None
    applied_seq: int | None = None
    awaiting: tuple[int, float] | None = None  # (seq, deadline): a state with something new, unconfirmed
    lag: float | None = None  # seconds from publishing a state to its receipt, last time
    clock_offset: float = 0.0
    blind: bool = False  # a blind event is raised for it

    def to_json(self, now: float, silent_after: float) -> dict[str, object]:
        return {"room": self.room, "online": self.alive(now, silent_after), "heard": self.heard,
                "last_seen": self.last_seen if self.heard else None, "lag": self.lag,
                "lamps": [lamp.model_dump() for lamp in self.lamps], "published_seq": self.published_seq,
                "applied_seq": self.applied_seq, "clock_offset": self.clock_offset}

    def alive(self, now: float, silent_after: float) -> bool:
        return self.online and now - self.last_seen < silent_after


class Rooms:
    """The rooms as the service's remote outputs: their states, their agents' health, presence."""

    def __init__(self, config: Config, clock: Clock) -> None:
        assert config.hub is not None
        self.hub = config.hub
        self.plan = RoomPlan(config.rooms, config.resolved_levels(), config.people)
        self.clock = clock
        self.generation = 0  # set from the journal before the first state is published
        self.on_look: Callable[[float], None] = lambda now: None  # at every update: the hub watches its agents
        self.agents = {room: AgentHealth(room, clock.now()) for room in config.rooms}
        self.whereabouts: dict[str, Whereabouts] = {}
        self.live: dict[str, str] = {}  # person -> the word Home Assistant tells now (current while it is connected)
        self.outbox: dict[str, RoomState] = {}  # the latest state per room not yet published
        self.wake = asyncio.Event()
        self._counter = 0
        self._content: dict[str, list[RoomSignal]] = {}
        self._wire: dict[int, tuple[Signal, RoomSignal]] = {}  # each visible signal and its wire form

    @property
    def names(self) -> frozenset[str]:
        return frozenset(self.plan.rooms)

    # ---- publishing ---------------------------------------------------------------------------

    def update(self, signals: Iterable[Signal], now: float) -> None:
        """Publish the rooms whose visible signals changed."""
        self.on_look(now)
        for person, word in self.live.items():
            self.report(person, word, now)  # what HA's open connection tells is current: never stale
        present = {person: self._where(person, now) for person in self.plan.people}
        ranked = {room: strongest([s for s in shown if s.key != silent_key(room)])  # not its own: it is back
                  for room, shown in signals_per_room(signals, self.plan, present, now).items()}
        visible = {s.event_id for shown in ranked.values() for s in shown}
        self._wire = {event_id: pair for event_id, pair in self._wire.items() if event_id in visible}
        for room, shown in ranked.items():
            wire = [self._on_wire(signal) for signal in shown]
            if wire != self._content.get(room):
                self._publish(room, wire, now)

    def _on_wire(self, signal: Signal) -> RoomSignal:
        """A signal as the rooms receive it, converted once while it stays the same."""
        cached = self._wire.get(signal.event_id)
        if cached is None or cached[0] != signal:
            cached = self._wire[signal.event_id] = (signal, room_signal(signal))
        return cached[1]

    def _publish(self, room: str, wire: list[RoomSignal], now: float) -> None:
        before = {s.event_id for s in self._content.get(room, [])}
        self._content[room] = wire
        self._counter += 1
        state = RoomState(room=room, seq=sequence(self.generation, self._counter), published_at=now, signals=wire)
        agent = self.agents[room]
        agent.published_seq = state.seq
        if agent.awaiting is None and {s.event_id for s in wire} - before:
            agent.awaiting = (state.seq, now + self.hub.apply_within)
        self.outbox[room] = state
        self.wake.set()

    def shows(self, room: str, event_id: int) -> bool:
        """Whether the room's current state has this signal (what a room may acknowledge)."""
        return any(s.event_id == event_id for s in self._content.get(room, []))

    def republish_all(self) -> None:
        """After a (re)connect: every room's current state again, so the retained copies are the truth."""
        now = self.clock.now()
        for room in self.plan.rooms:
            self._publish(room, self._content.get(room, []), now)

    # ---- what the agents say ------------------------------------------------------------------

    def heard(self, room: str, kind: Kind, payload: bytes, now: float) -> Ack | None:
        """A message from a room's agent; an Ack is returned for the service to act on. PayloadError if bad."""
        agent = self.agents[room]
        if kind is Kind.ACKS:
            ack = decode(Ack, payload)
            agent.last_seen, agent.heard = now, True
            return ack
        if kind is Kind.APPLIED:
            applied = decode(Applied, payload)
            agent.last_seen, agent.heard = now, True
            self._confirmed(agent, applied.seq, now)
        elif kind is Kind.HEALTH:
            health = decode(Health, payload)
            agent.heard, agent.online, agent.lamps = True, health.online, health.lamps
            agent.clock_offset = health.clock_offset
            agent.last_seen = now
            if health.applied_seq is not None:
                self._confirmed(agent, health.applied_seq, now)
        return None

    def _confirmed(self, agent: AgentHealth, seq: int, now: float) -> None:
        if agent.applied_seq is None or seq > agent.applied_seq:
            agent.applied_seq = seq
        if agent.awaiting is not None and seq >= agent.awaiting[0]:
            agent.lag = now - (agent.awaiting[1] - self.hub.apply_within)
            agent.awaiting = None

    # ---- presence -----------------------------------------------------------------------------

    def presence(self, person: str, payload: bytes, now: float) -> None:
        """A message on the person's presence topic: its payload is the reported word."""
        self.report(person, payload.decode("utf-8", "replace").strip().strip('"'), now)

    def told(self, person: str, word: str | None, now: float) -> None:
        """Home Assistant told the state of the person's entity (None: it cannot tell now). A state stays current
        while HA's connection stands; once it is lost, the last one goes stale after `stale_after`."""
        if word is not None:
            self.live[person] = word
            self.report(person, word, now)
        elif person in self.live:
            self.report(person, self.live.pop(person), now)

    def report(self, person: str, word: str, now: float) -> None:
        """A presence report: `word` names one of the person's rooms or none (rooms/routing.py)."""
        config = self.plan.people[person]
        assert config.presence is not None
        self.whereabouts[person] = observe(self.whereabouts.get(person), reported_room(word, config), now,
                                           config.presence.stay, config.presence.stale_after)

    def _where(self, person: str, now: float) -> str | None:
        config = self.plan.people[person].presence
        if config is None:
            return None
        return where(self.whereabouts.get(person), now, config.stay, config.stale_after)

    # ---- health -------------------------------------------------------------------------------

    def reachable(self, name: str) -> bool:
        return not self.problem(name)

    def problem(self, name: str) -> str:
        agent = self.agents[name]
        now = self.clock.now()
        if not agent.alive(now, self.hub.silent_after):
            return "its agent is offline" if not agent.online else \
                f"its agent has not been heard from for {now - agent.last_seen:.0f} s"
        if agent.awaiting is not None and now >= agent.awaiting[1]:
            return f"its agent did not confirm state {agent.awaiting[0]} within {self.hub.apply_within:g} s"
        if agent.lamps and not any(lamp.online for lamp in agent.lamps):
            return "every lamp of its agent is offline: " + "; ".join(f"{x.name}: {x.error}" for x in agent.lamps)
        return ""

    def silent(self, now: float) -> list[AgentHealth]:
        """Agents whose blind state is out of date (to raise or to resolve)."""
        return [a for a in self.agents.values() if a.blind == a.alive(now, self.hub.silent_after)]

    def next_deadline(self, now: float) -> float | None:
        moments: list[float] = []
        for agent in self.agents.values():
            if agent.online:
                moments.append(agent.last_seen + self.hub.silent_after)
            if agent.awaiting is not None:
                moments.append(agent.awaiting[1])
        for person, seen in self.whereabouts.items():
            presence = self.plan.people[person].presence
            if presence is not None:
                moments.append(presence_deadline(seen, now, presence.stay, presence.stale_after) or 0.0)
        if any(room.quiet_hours for room in self.plan.rooms.values()):
            moments.append(now + QUIET_LOOK)
        return min((t for t in moments if t > now), default=None)

    def views(self) -> list[dict[str, object]]:
        now = self.clock.now()
        return [agent.to_json(now, self.hub.silent_after) | {"problem": self.problem(agent.room) or None}
                for agent in self.agents.values()]


class Hub:
    """Runs a Service with the rooms as its remote outputs, and the MQTT link to the agents."""

    def __init__(self, config: Config, clock: Clock | None = None) -> None:
        assert config.hub is not None
        self.topics = Topics(config.hub.home)
        self.rooms = Rooms(config, clock or SystemClock())
        self.service = Service(config, self.rooms.clock, remote=self.rooms)
        self.rooms.generation = self._next_generation()
        self.rooms.on_look = self._watch_agents
        self._presence = {p.presence.topic: name for name, p in config.people.items()
                          if p.presence is not None and p.presence.topic is not None}
        self.hass_presence = HassPresence(config.people, self.told)
        self.link = MqttLink(broker_address(config.hub, f"lamplighter-hub-{config.hub.home}"),
                             topics=lambda: [*self.topics.from_agents(), *self._presence], qos=1,
                             on_message=self.on_message, on_connected=self._connected, on_lost=self._lost,
                             backoff=Backoff())
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        self._bad_logged: set[str] = set()

    def _next_generation(self) -> int:
        """The start time in seconds, or one more than the last start's if that is later: every state this
        run publishes is newer than any before, also those of a hub whose journal was lost."""
        last = int(self.service.store.setting(GENERATION_SETTING) or 0)
        generation = max(last + 1, int(self.service.clock.now()))
        self.service.store.set_setting(GENERATION_SETTING, generation)
        return generation

    async def start(self) -> None:
        await self.service.start()
        self.hass_presence.start()
        self._tasks = [asyncio.create_task(self.link.run(), name="hub mqtt"),
                       asyncio.create_task(self._publisher(), name="hub publisher")]

    async def stop(self) -> None:
        self._stopping = True
        self.rooms.wake.set()
        await self.link.stop()
        await end_tasks(self._tasks, STOP_BOUND)
        await self.hass_presence.stop()
        await self.service.stop()

    async def _publisher(self) -> None:
        """Publish the latest state of every room that changed, all rooms at once (their acknowledgements
        overlap instead of queueing); what a lost connection did not take, again."""
        while not self._stopping:
            await self.rooms.wake.wait()
            self.rooms.wake.clear()
            client = await self.link.connection()
            batch = list(self.rooms.outbox.items())
            sent = await asyncio.gather(*(self._publish(client, room, state) for room, state in batch))
            for (room, state), ok in zip(batch, sent, strict=True):
                if ok and self.rooms.outbox.get(room) is state:
                    del self.rooms.outbox[room]
            if not all(sent):
                self.rooms.wake.set()
                await asyncio.sleep(RESEND_PAUSE)  # the link notices and reconnects; `connection` waits for it

    async def _publish(self, client: aiomqtt.Client, room: str, state: RoomState) -> bool:
        """A room's state, retained; False if the connection failed."""
        try:
            await client.publish(self.topics.of(room, Kind.STATE), encode(state), qos=1, retain=True)
        except aiomqtt.MqttError:
            return False
        return True

    def _connected(self, client: aiomqtt.Client) -> None:
        log.info("hub: connected to %s as home %s", self.link.address, self.topics.home)
        client.pending_calls_threshold = len(self.rooms.agents)  # one state per room in flight is normal, not a warning
        self.rooms.republish_all()

    def _lost(self, error: str, refused: bool) -> None:
        log.warning("hub: %s broker %s: %s", "refused by" if refused else "lost", self.link.address, error)

    def on_message(self, message: aiomqtt.Message) -> None:
        """A message from an agent or a presence topic."""
        now = self.service.clock.now()
        topic, payload = str(message.topic), message.payload
        data = payload if isinstance(payload, bytes | bytearray) else str(payload).encode()
        if topic in self._presence:
            self.rooms.presence(self._presence[topic], bytes(data[:200]), now)
            self._presence_moved(now)
            return
        parsed = self.topics.parse(topic)
        if parsed is None or parsed[0] not in self.rooms.agents:
            return
        room, kind = parsed
        reachable = self.rooms.reachable(room)
        try:
            ack = self.rooms.heard(room, kind, bytes(data), now)
        except PayloadError as exc:
            self._log_bad(topic, str(exc))
            return
        if ack is not None:
            self._acknowledge(room, ack)
        if self.rooms.agents[room].blind:
            self._watch_agents(now)  # it spoke: its blind event ends (others fall silent at their deadlines)
        if self.rooms.reachable(room) != reachable:
            self.service.remote_changed()  # not at every receipt: that re-checks every room and signal

    def told(self, person: str, word: str | None) -> None:
        """Home Assistant told where a person is (None: it cannot tell now)."""
        now = self.service.clock.now()
        self.rooms.told(person, word, now)
        self._presence_moved(now)

    def _presence_moved(self, now: float) -> None:
        self.service.remote_changed()
        self.rooms.update(self.service.signals.values(), now)

    def _acknowledge(self, room: str, ack: Ack) -> None:
        by = f"{ack.by or 'someone'} in {room}"
        if not self.rooms.shows(room, ack.event_id):
            log.info("hub: %s acknowledged event %d, which the room does not show; ignored", by, ack.event_id)
            return
        try:
            result = self.service.acknowledge(ack.event_id, by)
        except StoreError as exc:
            log.warning("hub: the acknowledgement of event %d from %s was not stored: %s", ack.event_id, room, exc)
            return
        log.info("hub: event %d acknowledged by %s: %s", ack.event_id, by, result.value)

    def _watch_agents(self, now: float) -> None:
        """Raise `blind` for an agent that fell silent; resolve it when the agent speaks again."""
        for agent in self.rooms.silent(now):
            agent.blind = not agent.blind
            status = "firing" if agent.blind else "resolved"
            event = make_event(BLIND_LEVEL, f"room {agent.room}: its agent is silent", received_at=now,
                               source=HUB_SOURCE, sender=f"agent:{agent.room}", key=silent_key(agent.room),
                               status=status,
                               body=self.rooms.problem(agent.room))
            try:
                self.service.submit(event)
            except StoreError as exc:
                agent.blind = not agent.blind  # try again at the next look
                log.warning("hub: the blind event for room %s was not stored: %s", agent.room, exc)

    def _log_bad(self, topic: str, error: str) -> None:
        if topic not in self._bad_logged:
            self._bad_logged.add(topic)
            log.warning("hub: ignored a bad message on %s: %s", topic, error)
