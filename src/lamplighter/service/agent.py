"""A room agent: connects out to the hub's broker and shows its room's state on the room's lamps.

It drives the lamps with the same fleet of lamp controllers as `lamplighter run` (restore
snapshots in its own journal, pacing, read-back, health). From the broker it takes the room's
RoomState messages (on `state`: live, queued by its persistent session, and the retained one)
and applies one only if it is newer than the last it applied (rooms/protocol.py), keeping
that state in its journal: a restarted agent shows it again at once (what expired meanwhile
dropped) and takes nothing older from the broker.
Signals whose expiry has passed on the hub's clock (as the agent estimates it) are dropped:
a door event that expired while the room was offline is never shown, a 911 still active
shows as soon as the retained state arrives.

After every (re)connect the agent converges instead of replaying history: the broker first
delivers the states its session queued while the room was away, then (on our subscribe) the
retained state, which is the newest. Until that retained state arrives (at most
SETTLE_BOUND seconds) the agent only keeps the newest state it received, then applies that
one: a 911 acknowledged while the room was away never flashes on its way through the queue.

Back to the hub go an "applied" receipt for every state applied, a retained health message
every `heartbeat` and whenever a lamp's health changes (the broker publishes the will,
online false, when the connection dies), and acknowledgements (`acknowledge`, from the
agent's small HTTP API or an MQTT button).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

import aiomqtt

from lamplighter.backoff import Backoff
from lamplighter.config import Config
from lamplighter.drivers.base import Driver
from lamplighter.errors import PayloadError, StoreError
from lamplighter.model import Clock, LampView, SystemClock
from lamplighter.mqtt import MqttLink
from lamplighter.rooms.protocol import (
    Ack,
    Applied,
    ClockOffset,
    Health,
    Kind,
    LampHealth,
    RoomState,
    Topics,
    decode,
    encode,
    live,
    newer,
    to_signal,
)
from lamplighter.service.core import build_drivers
from lamplighter.service.fleet import LampFleet
from lamplighter.service.hub import broker_address
from lamplighter.service.metrics import Metrics
from lamplighter.service.tasks import end_tasks
from lamplighter.store import Store

log = logging.getLogger(__name__)

APPLIED_SETTING = "agent_applied_state"
DATABASE_NAME = "agent.db"
KEPT_NAME = "agent-room.db"
STOP_BOUND = 1.0
SETTLE_BOUND = 1.0  # after a connect, seconds to wait for the retained state before applying the newest queued one
RESEND_PAUSE = 0.05  # after a failed publish, before asking the link for its connection again


class Agent:
    """One room's agent. `async with agent.running():` or start()/stop()."""

    def __init__(self, config: Config, room: str, clock: Clock | None = None,
                 drivers: Mapping[str, Driver] | None = None) -> None:
        assert config.hub is not None
        self.room = room
        self.hub = config.hub
        self.clock = clock or SystemClock()
        self.topics = Topics(config.hub.home)
        self.store = Store(config.state_dir / DATABASE_NAME)  # the lamps' restore snapshots
        self.kept = Store(config.state_dir / KEPT_NAME)  # the applied state, written from a worker thread
        self.fleet = LampFleet(drivers if drivers is not None else build_drivers(config), config.sirens, self.store,
                               self.clock, Metrics(), on_problem=self._lamps_changed)
        self.state: RoomState | None = self._stored_state()
        self.applied: int | None = self.state.seq if self.state is not None else None
        self.offset = ClockOffset()
        self.outbox: asyncio.Queue[tuple[str, bytes, bool]] = asyncio.Queue()
        will = aiomqtt.Will(self.topics.of(room, Kind.HEALTH), encode(Health(online=False)), qos=1, retain=True)
        self.link = MqttLink(broker_address(config.hub, f"lamplighter-agent-{config.hub.home}-{room}", will),
                             topics=self._subscriptions, qos=1, on_message=self._message,
                             on_connected=self._connected, on_lost=self._lost, backoff=Backoff())
        self._tasks: list[asyncio.Task[None]] = []
        self._deliveries: set[asyncio.Task[None]] = set()  # messages published, not yet acknowledged
        self._stopping = False
        self._health_sent: list[LampHealth] | None = None
        self._bad_logged = False
        self._stored_state_seq = self.applied
        self._keep_wake = asyncio.Event()
        self._last_payload = b""
        self._settling: asyncio.TimerHandle | None = None  # after a connect, until the retained state arrives
        self._newest: RoomState | None = None  # the newest state received while settling

    @property
    def _applied_key(self) -> str:
        return f"{APPLIED_SETTING}:{self.hub.home}:{self.room}"

    def _stored_state(self) -> RoomState | None:
        stored = self.kept.setting(self._applied_key)
        try:
            return RoomState.model_validate(stored) if stored is not None else None
        except ValueError:
            log.warning("agent %s: the stored room state is unreadable; waiting for the hub's", self.room)
            return None

    # ---- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        self.fleet.resume(self.store.snapshots())
        self.fleet.start()
        if self.state is not None:
            self.apply(self.state, self.clock.now())
        self._tasks = [asyncio.create_task(self.link.run(), name="agent mqtt"),
                       asyncio.create_task(self._sender(), name="agent sender"),
                       asyncio.create_task(self._heartbeat(), name="agent heartbeat"),
                       asyncio.create_task(self._keeper(), name="agent keeper")]

    async def stop(self) -> None:
        """Say goodbye (health offline) if connected, then stop, within bounds."""
        self._stopping = True
        client = self.link.client
        if client is not None:
            try:
                async with asyncio.timeout(STOP_BOUND):
                    await client.publish(self.topics.of(self.room, Kind.HEALTH),
                                         encode(Health(online=False, at=self.clock.now())), qos=1, retain=True)
            except (aiomqtt.MqttError, TimeoutError):
                pass
        await self.link.stop()
        await end_tasks([*self._tasks, *self._deliveries, *self.fleet.stop_tasks()], STOP_BOUND)
        await self.fleet.close()
        self.store.close()
        self.kept.close()

    # ---- from the hub -------------------------------------------------------------------------

    def _subscriptions(self) -> list[str]:
        button = self.hub.ack_button
        return [*self.topics.to_agent(self.room), *([button] if button else [])]

    def _message(self, message: aiomqtt.Message) -> None:
        now = self.clock.now()
        payload = message.payload if isinstance(message.payload, bytes | bytearray) else b""
        if self.hub.ack_button is not None and str(message.topic) == self.hub.ack_button:
            if payload and not message.retain:  # a press; not a retained old one, not an empty clearing message
                self._button_pressed()
            return
        if payload == self._last_payload and self._settling is None:
            return  # the same state again (a QoS 1 duplicate): not even parsed
        self._last_payload = bytes(payload)
        try:
            state = decode(RoomState, payload)
        except PayloadError as exc:
            if not self._bad_logged:
                log.warning("agent %s: ignored a bad message on %s: %s", self.room, message.topic, exc)
                self._bad_logged = True
            return
        if state.room != self.room:
            return
        if not message.retain:
            self.offset.observe(state.published_at, now)
        if self._settling is not None:
            if self._newest is None or state.seq > self._newest.seq:
                self._newest = state
            if message.retain and str(message.topic) == self.topics.of(self.room, Kind.STATE):
                self._settle()
        elif newer(self.applied, state):
            self.apply(state, now)

    def _settle(self) -> None:
        """The retained state arrived after a connect (or SETTLE_BOUND passed): apply the newest received."""
        if self._settling is not None:
            self._settling.cancel()
            self._settling = None
        newest, self._newest = self._newest, None
        if newest is not None and newer(self.applied, newest):
            self.apply(newest, self.clock.now())

    def apply(self, state: RoomState, now: float) -> None:
        """Show a state: its signals that have not expired, on every lamp; say so to the hub; then keep it
        in the journal (after the lamps have had their turn: a write waits for the disk)."""
        self.state, self.applied = state, state.seq
        offset = self.offset.seconds
        lamps = self.fleet.names
        shown = [to_signal(s, lamps, offset) for s in live(state, now + offset)]
        self.fleet.update(shown, since=state.published_at - offset)
        receipt = Applied(seq=state.seq, at=now, showing=[s.event_id for s in shown])
        self._send(Kind.APPLIED, encode(receipt))
        self._keep_wake.set()

    async def _keeper(self) -> None:
        """Keep the newest applied state in its own journal, in a worker thread: the lamps do not wait
        for the disk. Losing the last one to a crash costs nothing: the retained state is newer."""
        while not self._stopping:
            await self._keep_wake.wait()
            self._keep_wake.clear()
            state = self.state
            if state is None or state.seq == self._stored_state_seq:
                continue
            try:
                await asyncio.to_thread(self.kept.set_setting, self._applied_key, state.model_dump(mode="json"))
            except StoreError as exc:
                log.warning("agent %s: the applied state was not kept (%s)", self.room, exc)
                continue
            self._stored_state_seq = state.seq

    # ---- to the hub ---------------------------------------------------------------------------

    def acknowledge(self, event_id: int, by: str) -> None:
        """Someone in the room acknowledged an event: tell the hub (queued while offline)."""
        self._send(Kind.ACKS, encode(Ack(event_id=event_id, by=by[:100], at=self.clock.now())))

    def _button_pressed(self) -> None:
        """The room's button acknowledges what its lamps show: the strongest signal of the applied state."""
        shown = [view.showing for view in self.fleet.views() if view.showing is not None and view.showing.event_id > 0]
        if not shown:
            log.info("agent %s: the button was pressed with nothing to acknowledge", self.room)
            return
        strongest = max(shown, key=lambda s: (s.priority, s.started_at, s.event_id))
        self.acknowledge(strongest.event_id, "the button")

    def health(self) -> Health:
        return Health(online=True, at=self.clock.now(), lamps=self._lamp_health(), applied_seq=self.applied,
                      clock_offset=self.offset.seconds)

    def lamp_views(self) -> list[LampView]:
        return self.fleet.views()

    def _lamp_health(self) -> list[LampHealth]:
        return [LampHealth(name=v.name, online=v.online and v.reached, error=v.error[:300])
                for v in self.fleet.views()]

    def _lamps_changed(self) -> None:
        if self._lamp_health() != self._health_sent:
            self._send_health()

    def _send_health(self) -> None:
        self._health_sent = self._lamp_health()
        self._send(Kind.HEALTH, encode(self.health()), retain=True)

    def _send(self, kind: Kind, payload: bytes, retain: bool = False) -> None:
        self.outbox.put_nowait((self.topics.of(self.room, kind), payload, retain))

    async def _sender(self) -> None:
        """Publish what the agent has to say, in order, without waiting for one message's acknowledgement
        before sending the next: over a slow line a heartbeat would otherwise wait a round trip behind
        every receipt, and the hub would call a busy room silent."""
        while not self._stopping:
            message = await self.outbox.get()
            client = await self.link.connection()
            delivery = asyncio.create_task(self._deliver(client, message))  # hands it to the connection at once
            self._deliveries.add(delivery)
            delivery.add_done_callback(self._deliveries.discard)

    async def _deliver(self, client: aiomqtt.Client, message: tuple[str, bytes, bool]) -> None:
        """One message until the broker acknowledges it; one the connection did not take goes out again
        (but health: the reconnect and the next heartbeat send a fresh one)."""
        try:
            await client.publish(message[0], message[1], qos=1, retain=message[2])
        except aiomqtt.MqttError:
            await asyncio.sleep(RESEND_PAUSE)  # the link notices and reconnects; `connection` waits for it
            if message[0] != self.topics.of(self.room, Kind.HEALTH):
                self.outbox.put_nowait(message)

    async def _heartbeat(self) -> None:
        while not self._stopping:
            await asyncio.sleep(self.hub.heartbeat)
            self._send_health()

    def _connected(self, client: aiomqtt.Client) -> None:
        log.info("agent %s: connected to %s", self.room, self.link.address)
        if self._settling is not None:
            self._settling.cancel()
        self._newest = None
        self._settling = asyncio.get_running_loop().call_later(SETTLE_BOUND, self._settle)
        self._send_health()

    def _lost(self, error: str, refused: bool) -> None:
        log.warning("agent %s: %s broker %s: %s", self.room, "refused by" if refused else "lost",
                    self.link.address, error)
