"""Hub and rooms: from an event posted to the hub to the lamp of every room agent, on one real Mosquitto.

The hub is a real `lamplighter hub` process; the agents are in-process tasks of this script
(lamplighter.service.agent.Agent with a virtual lamp each, all on one event loop: 50 agent
processes would not fit on 2 cores next to the hub and the broker); their journals are on
/dev/shm, since 50 rooms would each have a disk of their own, not wait for one another's
fsyncs on one. One agent's resident memory is measured as a real `lamplighter agent` process.
Each agent count runs on a fresh broker (no sessions left from the run before).

- anchor: the broker's own QoS 1 round trip (publish to a topic we subscribe to), measured
  on the same broker just before each run;
- per agent count (1, 10, 50): post a 911 with a unique title, record when each agent's lamp
  has applied it (its lamp controller's view shows the event), acknowledge it on the hub,
  wait until every lamp is back; repeat. Reported: every (event, agent) sample, per event
  the time until the last room shows it, and each sample from the hub's HTTP answer on (what
  the rooms add to an event that is already in the hub's journal);
- hub throughput with 10 rooms (and the hub's CPU time per event, since this script's agents
  and clients share the cores with it): events posted by 8 concurrent clients (912s with unique
  titles, each written to the journal before its answer), until every room applied the last
  state; events/s and room states published/s (the hub coalesces a room's states that its
  connection had no time to send).

    .venv/bin/python bench/hub.py [--events 100] [--agents 1,10,50] [--burst 300]

Prints a report and writes bench/results/hub.json. Timings are reported, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiomqtt
import httpx

from bench._stats import cpu_seconds, format_summary, machine, machine_line, proc_status, summary_ms, write_results
from lamplighter.config import parse_config
from lamplighter.rooms.protocol import RoomState
from lamplighter.service.agent import Agent
from tests.daemon import TOKEN
from tests.peers.mosquitto import Mosquitto
from tests.rooms import AgentProcess, HubProcess, hub_settings

GAP = 0.03  # seconds between iterations (the virtual lamp's pacing is 20 ms)
LEVELS = "lamps: {}\nlevels: {911: {hold: 1h}, 912: {hold: 1h}}\n"
TIMING = "apply_within: 5s, silent_after: 60s, heartbeat: 15s"  # the defaults: no blind agent on a busy machine
AGENT_DISK = "/dev/shm" if Path("/dev/shm").is_dir() else None  # each agent has its own disk, not one shared
COUNTER = (1 << 32) - 1  # the hub's state counter (one for all rooms) in a sequence number
POSTERS = 8  # concurrent requests in the throughput run


async def broker_round_trip(port: int, samples: int) -> list[float]:
    """QoS 1 publish to our own subscription, on the same broker: the floor under everything else."""
    times: list[float] = []
    async with aiomqtt.Client("127.0.0.1", port) as client:
        await client.subscribe("bench/rt", qos=1)
        for index in range(samples + 10):
            started = time.perf_counter()
            await client.publish("bench/rt", str(index).encode(), qos=1)
            async for _ in client.messages:
                break
            if index >= 10:
                times.append(time.perf_counter() - started)
    return times


class TimedAgent(Agent):
    """An agent that notes when it hands a state to its lamps (before the lamps' own work)."""

    handed: dict[tuple[str, int], float]

    def apply(self, state: RoomState, now: float) -> None:
        for signal in state.signals:
            self.handed.setdefault((self.room, signal.event_id), time.perf_counter())
        super().apply(state, now)


class Rooms:
    """N in-process agents and when each lamp showed what."""

    def __init__(self, broker: Mosquitto, workdir: Path, count: int) -> None:
        self.agents: list[TimedAgent] = []
        self.handed: dict[tuple[str, int], float] = {}  # (room, event) -> when its agent applied the state
        for index in range(count):
            lamps = f"state_dir: {workdir / f'r{index}'}\nlamps: {{desk: virtual://desk}}\n"
            text = lamps + hub_settings(broker, TIMING)
            agent = TimedAgent(parse_config(text, env={}), f"r{index}")
            agent.handed = self.handed
            self.agents.append(agent)
        self.shown: dict[tuple[int, int], float] = {}  # (agent, event) -> perf_counter when the lamp showed it
        self.showing: dict[int, int | None] = dict.fromkeys(range(count))  # agent -> the event its lamp shows
        self._watchers: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        for agent in self.agents:
            await agent.start()
        self._watchers = [asyncio.create_task(self._watch(i, a)) for i, a in enumerate(self.agents)]

    async def stop(self) -> None:
        for task in self._watchers:
            task.cancel()
        for agent in self.agents:
            await agent.stop()

    async def _watch(self, index: int, agent: Agent) -> None:
        queue = agent.fleet.watch("desk")
        while True:
            view = await queue.get()
            if view is None:
                return
            if view.showing is not None and view.state is not None and view.state.on:
                self.shown.setdefault((index, view.showing.event_id), time.perf_counter())
            self.showing[index] = view.showing.event_id if view.showing is not None else None

    async def until(self, done: Any, timeout: float = 30.0) -> None:
        deadline = time.perf_counter() + timeout
        while not done():
            if time.perf_counter() > deadline:
                raise TimeoutError("the rooms did not get there in time")
            await asyncio.sleep(0.001)


async def latency(broker: Mosquitto, workdir: Path, agent_dir: Path, count: int, events: int) -> dict[str, Any]:
    rooms_yaml = "{" + ", ".join(f"r{i}: {{}}" for i in range(count)) + "}"
    hub = HubProcess(workdir / f"hub{count}", broker, rooms=rooms_yaml, extra=LEVELS, timing=TIMING).start()
    rooms = Rooms(broker, agent_dir / f"agents{count}", count)
    per_sample: list[float] = []
    per_event: list[float] = []
    after_answer: list[float] = []  # from the hub's answer (the event is in its journal) to each lamp
    handed: list[float] = []  # from the hub's answer to each agent applying the state (before its lamp's work)
    try:
        await rooms.start()
        async with httpx.AsyncClient(base_url=hub.url, headers={"Authorization": f"Bearer {TOKEN}"}) as http:
            await rooms.until(lambda: all(a["heard"] for a in hub.get("/api/agents")))
            wall, cpu = time.perf_counter(), time.process_time()
            for index in range(events + 5):
                started = time.perf_counter()
                answer = (await http.post("/api/events", json={"level": "911", "title": f"bench {index}"})).json()
                answered = time.perf_counter()
                event: int = answer["id"]
                await rooms.until(lambda event=event: all((i, event) in rooms.shown for i in range(count)))
                times = [rooms.shown[(i, event)] - started for i in range(count)]
                if index >= 5:  # warm-up
                    per_sample += times
                    per_event.append(max(times))
                    after_answer += [started + t - answered for t in times]
                    handed += [rooms.handed[(f"r{i}", event)] - answered for i in range(count)]
                await http.post(f"/api/events/{event}/ack", json={"by": "bench"})
                await rooms.until(lambda event=event: event not in rooms.showing.values())
                await asyncio.sleep(GAP)
        busy = (time.process_time() - cpu) / (time.perf_counter() - wall)
        return {"agents": count, "agents_process_cpu_share": round(busy, 2),
                "sample": summary_ms(per_sample), "last_room": summary_ms(per_event),
                "after_answer": summary_ms(after_answer), "answer_to_agent": summary_ms(handed)}
    finally:
        await rooms.stop()
        hub.stop()


async def post(http: httpx.AsyncClient, title: str, slots: asyncio.Semaphore) -> int:
    async with slots:
        return int((await http.post("/api/events", json={"level": "912", "title": title})).json()["id"])


async def throughput(broker: Mosquitto, workdir: Path, agent_dir: Path, burst: int) -> dict[str, Any]:
    count = 10
    rooms_yaml = "{" + ", ".join(f"r{i}: {{}}" for i in range(count)) + "}"
    hub = HubProcess(workdir / "hub-burst", broker, rooms=rooms_yaml, extra=LEVELS, timing=TIMING).start()
    rooms = Rooms(broker, agent_dir / "agents-burst", count)
    slots = asyncio.Semaphore(POSTERS)
    try:
        await rooms.start()
        async with httpx.AsyncClient(base_url=hub.url, headers={"Authorization": f"Bearer {TOKEN}"}) as http:
            await rooms.until(lambda: all(a["heard"] for a in hub.get("/api/agents")))
            before = {a["room"]: a["published_seq"] for a in hub.get("/api/agents")}
            assert hub.process is not None
            cpu_before = cpu_seconds(hub.process.pid) or 0.0
            started = time.perf_counter()
            ids = await asyncio.gather(*(post(http, f"burst {i}", slots) for i in range(burst)))
            last = max(ids)
            posted = time.perf_counter() - started
            await rooms.until(lambda: all(a.state is not None and any(s.event_id == last for s in a.state.signals)
                                          for a in rooms.agents), timeout=60)
            elapsed = time.perf_counter() - started
            hub_cpu = (cpu_seconds(hub.process.pid) or 0.0) - cpu_before
            after = {a["room"]: a["published_seq"] for a in hub.get("/api/agents")}
        states = max(s & COUNTER for s in after.values()) - max(s & COUNTER for s in before.values())
        return {"rooms": count, "events": burst, "post_seconds": round(posted, 3), "seconds": round(elapsed, 3),
                "events_per_second": round(burst / elapsed, 1), "states_published": states,
                "states_per_second": round(states / elapsed, 1),
                "mqtt_messages_per_second": round(2 * states / elapsed, 1), "hub_cpu_seconds": round(hub_cpu, 2),
                "hub_cpu_ms_per_event": round(hub_cpu / burst * 1000, 2)}
    finally:
        await rooms.stop()
        hub.stop()


def agent_memory(broker: Mosquitto, workdir: Path) -> dict[str, int]:
    hub = HubProcess(workdir / "hub-mem", broker, rooms="{study: {}}", extra=LEVELS, timing=TIMING).start()
    agent = AgentProcess(workdir / "agent-mem", broker, room="study").start()
    try:
        hub.send("911", "memory")
        agent.wait_for(lambda view: view["showing"] is not None)
        assert agent.process is not None
        return proc_status(agent.process.pid)
    finally:
        agent.stop()
        hub.stop()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100)
    parser.add_argument("--agents", default="1,10,50")
    parser.add_argument("--burst", type=int, default=300)
    parser.add_argument("--round-trips", type=int, default=1000)
    args = parser.parse_args()
    info = machine()
    print(machine_line(info))
    runs = []
    with tempfile.TemporaryDirectory(prefix="lamplighter-bench-hub-") as tmp, \
            tempfile.TemporaryDirectory(prefix="lamplighter-bench-agents-", dir=AGENT_DISK) as agents:
        for count in (int(n) for n in args.agents.split(",")):
            with Mosquitto(Path(tmp) / f"mqtt{count}").start() as broker:  # a fresh broker: no sessions of the last run
                anchor = summary_ms(await broker_round_trip(broker.port, args.round_trips))
                run = await latency(broker, Path(tmp), Path(agents), count, args.events)
            run["broker_round_trip"] = anchor
            runs.append(run)
            print(format_summary(f"broker QoS 1 round trip, before the {count}-agent run", anchor))
            print(format_summary(f"hub event -> agent lamp, {count} agent(s), each room", run["sample"]))
            print(format_summary(f"hub event -> agent lamp, {count} agent(s), last room", run["last_room"]))
            print(format_summary(f"hub's answer -> agent lamp, {count} agent(s), each room", run["after_answer"]))
            print(format_summary(f"hub's answer -> agent has the state, {count} agent(s)", run["answer_to_agent"]))
            print(f"  p50 / broker round trip p50: {run['sample']['p50'] / anchor['p50']:.0f}x; the agents' process "
                  f"was on a CPU {run['agents_process_cpu_share']:.0%} of the time")
        with Mosquitto(Path(tmp) / "mqtt-burst").start() as broker:
            burst = await throughput(broker, Path(tmp), Path(agents), args.burst)
            print(f"hub throughput, 10 rooms: {burst['events_per_second']} events/s, {burst['states_per_second']} room "
                  f"states/s ({burst['mqtt_messages_per_second']} MQTT messages/s) over {burst['seconds']} s; "
                  f"hub CPU {burst['hub_cpu_ms_per_event']} ms per event")
            memory = agent_memory(broker, Path(tmp))
            print(f"agent process (one virtual lamp): VmRSS {memory.get('VmRSS', 0) / 1024:.1f} MiB, "
                  f"RssAnon {memory.get('RssAnon', 0) / 1024:.1f} MiB, threads {memory.get('Threads')}")
    path = write_results("hub", {"machine": info, "latency": runs, "throughput": burst, "agent_memory_kb": memory})
    print(f"wrote {path}")


if __name__ == "__main__":
    asyncio.run(main())
