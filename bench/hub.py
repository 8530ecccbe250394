"""Hub and rooms: from an event posted to the hub to every room agent's lamp, on one real Mosquitto.

Everything is a separate process, as in a home where each room's agent runs on its own
machine: a real Mosquitto 2 on loopback (`set_tcp_nodelay true`, as the README recommends;
a fresh broker per agent count, so no sessions are left from the run before), a real
`lamplighter hub` process and N real `lamplighter agent --room rN` processes, each with one
virtual lamp and its state directory on /dev/shm (in a home each agent has a disk of its own;
here they would otherwise queue behind one another's writes on one disk).

When a room's lamp applied a state is seen from outside the agents, on the broker: this
script subscribes (QoS 0, so it adds no acknowledgements to the broker's work) to the
agents' `applied` receipts, which an agent publishes when it hands a state to its lamp
controller, and which list the event ids its lamps show. Compared with watching the lamp
itself, that adds the receipt's way back: the agent's publish and one broker hop to this
script (about half the broker's round trip below), and this script's own turn to read it.
The receipt also carries the agent's clock at the moment it applied (`at`); on one machine
the clocks are the same, so "agent applied" (by that clock) is reported too, without the way
back. The virtual lamp's own write follows in the agent's next event-loop turns (it is a
value in memory).

- anchor: the broker's own QoS 1 round trip (publish to a topic we subscribe to), measured
  on the same broker just before each run;
- per agent count (1, 10, 50): post a 911 with a unique title, wait for every room's receipt
  that shows it, acknowledge it on the hub, wait for every room's receipt without it; repeat.
  Reported: every (event, room) sample, per event the time until the last room shows it,
  from the hub's HTTP answer on (what the rooms add to an event already in the hub's
  journal), the CPU time each process used per event (hub, broker, all agents, this script)
  and the load average before and after;
- hub throughput with 10 rooms: events posted by 8 concurrent clients (912s with unique
  titles, each written to the journal before its answer), until every room's receipt shows
  the last; events/s and room states published/s (the hub coalesces a room's states that its
  connection had no time to send), and the hub's CPU time per event;
- memory: every agent process's resident memory in the 50-room run (median and largest).

    .venv/bin/python bench/hub.py [--events 100] [--agents 1,10,50] [--burst 300]

Prints a report and writes bench/results/hub.json. Timings are reported, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # this checkout's lamplighter

import aiomqtt
import httpx

import tests.rooms
from bench._stats import cpu_seconds, format_summary, machine, machine_line, proc_status, summary_ms, write_results
from lamplighter.mqtt import NO_DELAY
from tests.daemon import TOKEN, free_port
from tests.peers.mosquitto import Mosquitto
from tests.rooms import HOME, AgentProcess, HubProcess

GAP = 0.05  # seconds between iterations (the virtual lamp's pacing is 20 ms)
WARMUP = 5
LEVELS = "lamps: {}\nlevels: {911: {hold: 1h}, 912: {hold: 1h}}\n"
TIMING = "apply_within: 5s, silent_after: 60s, heartbeat: 15s"  # the defaults: no blind agent on a busy machine
AGENT_DISK = "/dev/shm" if Path("/dev/shm").is_dir() else None  # each agent has its own disk, not one shared
COUNTER = (1 << 32) - 1  # the hub's state counter (one for all rooms) in a sequence number
POSTERS = 8  # concurrent requests in the throughput run
RECEIPTS = f"lamplighter/{HOME}/rooms/+/applied"
STARTING = 8  # agent processes starting at once (each imports for about a second of CPU)
tests.rooms.READY_TIMEOUT = 120.0  # 50 agents starting on 2 busy cores take longer than a test's one


async def broker_round_trip(port: int, samples: int) -> list[float]:
    """QoS 1 publish to our own subscription, on the same broker: the floor under everything else."""
    times: list[float] = []
    async with aiomqtt.Client("127.0.0.1", port, socket_options=NO_DELAY) as client:
        await client.subscribe("bench/rt", qos=1)
        for index in range(samples + 10):
            started = time.perf_counter()
            await client.publish("bench/rt", str(index).encode(), qos=1)
            async for _ in client.messages:
                break
            if index >= 10:
                times.append(time.perf_counter() - started)
    return times


class Receipts:
    """The agents' `applied` receipts as one more subscriber of the broker sees them."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.first: dict[tuple[str, int], tuple[float, float]] = {}  # (room, event) -> (arrival, agent's `at`)
        self.showing: dict[str, set[int]] = {}  # room -> the events its last receipt listed
        self._changed = asyncio.Event()
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Receipts:
        self._task = asyncio.create_task(self._listen())
        await asyncio.wait_for(self._ready.wait(), 10)
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task  # its client disconnects now, not at the loop's shutdown

    async def _listen(self) -> None:
        async with aiomqtt.Client("127.0.0.1", self.port, socket_options=NO_DELAY) as client:
            await client.subscribe(RECEIPTS, qos=0)
            self._ready.set()
            async for message in client.messages:
                arrived = time.perf_counter()
                room = str(message.topic).split("/")[-2]
                assert isinstance(message.payload, bytes)
                receipt = json.loads(message.payload)
                shown = set(receipt["showing"])
                self.showing[room] = shown
                for event in shown:
                    self.first.setdefault((room, event), (arrived, receipt["at"]))
                self._changed.set()

    async def until(self, done: Callable[[], bool], timeout: float = 30.0) -> None:
        async with asyncio.timeout(timeout):
            while not done():
                self._changed.clear()
                await self._changed.wait()


def start_all(processes: list[AgentProcess]) -> None:
    """Start processes in parallel (each waits until it answers on /healthz)."""
    with ThreadPoolExecutor(max_workers=STARTING) as pool:
        list(pool.map(start, processes))


def start(process: AgentProcess) -> None:
    """Start; again on another port if its own was taken meanwhile (by a connection to the broker, or by
    another program whose /healthz then answered in its place)."""
    for _ in range(5):
        try:
            process.start()
            time.sleep(0.5)
            if process.get("/healthz")["room"] == process.room and process.process.poll() is None:
                return
        except (RuntimeError, httpx.HTTPError, KeyError):
            if "address already in use" not in process.log_tail():
                raise
        process.stop()
        process.port = free_port()
    raise RuntimeError(f"agent {process.room} found no free port")


def stop_all(processes: list[Any]) -> None:
    """SIGTERM to all at once, then wait for each (SIGKILL if it does not end)."""
    for process in processes:
        if process.process is not None and process.process.poll() is None:
            process.process.terminate()
    for process in processes:
        process.stop()


def cpu_of(processes: list[Any]) -> float:
    return sum(cpu_seconds(p.process.pid) or 0.0 for p in processes)


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def rss(processes: list[Any]) -> dict[str, float]:
    status = [proc_status(p.process.pid) for p in processes]
    mib = [s.get("VmRSS", 0) / 1024 for s in status]
    anon = [s.get("RssAnon", 0) / 1024 for s in status]
    return {"processes": len(status), "rss_mib_median": round(statistics.median(mib), 1),
            "rss_mib_max": round(max(mib), 1), "anon_mib_median": round(statistics.median(anon), 1),
            "threads": max(s.get("Threads", 0) for s in status)}


def hub_and_agents(broker: Mosquitto, workdir: Path, agent_dir: Path,
                   count: int) -> tuple[HubProcess, list[AgentProcess]]:
    rooms_yaml = "{" + ", ".join(f"r{i}: {{}}" for i in range(count)) + "}"
    hub = HubProcess(workdir / "hub", broker, rooms=rooms_yaml, extra=LEVELS, timing=TIMING)
    agents = [AgentProcess(agent_dir / f"r{i}", broker, room=f"r{i}", timing=TIMING) for i in range(count)]
    try:
        start_all(agents)  # first: a hub would count agents that take long to start as silent (blind)
        hub.start()  # it hears every agent at once from their retained health messages
    except BaseException:
        stop_all([*agents, hub])  # none left behind
        raise
    return hub, agents


async def all_heard(hub: HubProcess) -> None:
    while not all(a["heard"] for a in await asyncio.to_thread(hub.get, "/api/agents")):
        await asyncio.sleep(0.2)


async def latency(broker: Mosquitto, workdir: Path, agent_dir: Path, count: int, events: int) -> dict[str, Any]:
    hub, agents = hub_and_agents(broker, workdir / f"hub{count}", agent_dir / f"agents{count}", count)
    rooms = [agent.room for agent in agents]
    per_sample: list[float] = []
    per_event: list[float] = []
    after_answer: list[float] = []  # from the hub's answer (the event is in its journal) to each room's receipt
    agent_applied: list[float] = []  # from posting to the agent applying it, by the receipt's `at`
    try:
        async with Receipts(broker.port) as receipts, \
                httpx.AsyncClient(base_url=hub.url, headers={"Authorization": f"Bearer {TOKEN}"}) as http:
            await all_heard(hub)
            await asyncio.sleep(1.5)  # the agents settle on the retained state after connecting
            print(f"  {count} agent(s) heard by the hub; measuring", flush=True)
            load_before = load()
            procs = {"hub": [hub], "broker": [broker], "agents": agents}
            cpu_before = {name: cpu_of(p) for name, p in procs.items()}
            bench_cpu, wall = time.process_time(), time.perf_counter()
            for index in range(events + WARMUP):
                posted_wall, started = time.time(), time.perf_counter()
                answer = (await http.post("/api/events", json={"level": "911", "title": f"bench {index}"})).json()
                answered = time.perf_counter()
                event: int = answer["id"]
                await receipts.until(lambda event=event: all((room, event) in receipts.first for room in rooms))
                seen = [receipts.first[(room, event)] for room in rooms]
                if index >= WARMUP:
                    times = [arrived - started for arrived, _ in seen]
                    per_sample += times
                    per_event.append(max(times))
                    after_answer += [arrived - answered for arrived, _ in seen]
                    agent_applied += [at - posted_wall for _, at in seen]
                await http.post(f"/api/events/{event}/ack", json={"by": "bench"})
                await receipts.until(lambda event=event: all(event not in receipts.showing[room] for room in rooms))
                await asyncio.sleep(GAP)
            elapsed = time.perf_counter() - wall
            iterations = events + WARMUP
            cpu = {name: (cpu_of(p) - cpu_before[name]) / iterations * 1000 for name, p in procs.items()}
            cpu["bench"] = (time.process_time() - bench_cpu) / iterations * 1000
            memory = rss(agents)
            hub_memory = rss([hub])
        return {"agents": count, "load_before": load_before, "load_after": load(),
                "seconds": round(elapsed, 1), "iterations": iterations,
                "cpu_ms_per_event": {k: round(v, 2) for k, v in cpu.items()},
                "agent_cpu_ms_per_state": round(cpu["agents"] / count / 2, 2),  # a 911 and its end per iteration
                "sample": summary_ms(per_sample), "last_room": summary_ms(per_event),
                "after_answer": summary_ms(after_answer), "agent_applied": summary_ms(agent_applied),
                "agent_memory": memory, "hub_memory": hub_memory}
    finally:
        stop_all([*agents, hub])


async def post(http: httpx.AsyncClient, title: str, slots: asyncio.Semaphore) -> int:
    async with slots:
        return int((await http.post("/api/events", json={"level": "912", "title": title})).json()["id"])


async def throughput(broker: Mosquitto, workdir: Path, agent_dir: Path, burst: int) -> dict[str, Any]:
    count = 10
    hub, agents = hub_and_agents(broker, workdir / "hub-burst", agent_dir / "agents-burst", count)
    rooms = [agent.room for agent in agents]
    slots = asyncio.Semaphore(POSTERS)
    try:
        async with Receipts(broker.port) as receipts, \
                httpx.AsyncClient(base_url=hub.url, headers={"Authorization": f"Bearer {TOKEN}"}) as http:
            await all_heard(hub)
            await asyncio.sleep(1.5)
            before = {a["room"]: a["published_seq"] for a in hub.get("/api/agents")}
            load_before = load()
            cpu_before = cpu_of([hub])
            started = time.perf_counter()
            ids = await asyncio.gather(*(post(http, f"burst {i}", slots) for i in range(burst)))
            last = max(ids)
            posted = time.perf_counter() - started
            await receipts.until(lambda: all((room, last) in receipts.first for room in rooms), timeout=120)
            elapsed = time.perf_counter() - started
            hub_cpu = cpu_of([hub]) - cpu_before
            after = {a["room"]: a["published_seq"] for a in hub.get("/api/agents")}
        states = max(s & COUNTER for s in after.values()) - max(s & COUNTER for s in before.values())
        return {"rooms": count, "events": burst, "load_before": load_before, "load_after": load(),
                "post_seconds": round(posted, 3), "seconds": round(elapsed, 3),
                "events_per_second": round(burst / elapsed, 1), "states_published": states,
                "states_per_second": round(states / elapsed, 1), "hub_cpu_seconds": round(hub_cpu, 2),
                "hub_cpu_ms_per_event": round(hub_cpu / burst * 1000, 2)}
    finally:
        stop_all([*agents, hub])


def report(run: dict[str, Any], anchor: dict[str, Any]) -> None:
    count = run["agents"]
    print(f"{count} agent process(es): load average {run['load_before']} before, {run['load_after']} after, "
          f"{run['iterations']} events in {run['seconds']} s")
    print(format_summary(f"  broker QoS 1 round trip, before the {count}-agent run", anchor))
    print(format_summary("  hub event -> room's receipt, each room", run["sample"]))
    print(format_summary("  hub event -> room's receipt, last room", run["last_room"]))
    print(format_summary("  hub's answer -> room's receipt, each room", run["after_answer"]))
    print(format_summary("  hub event -> agent applied (receipt's own time), each room", run["agent_applied"]))
    p50, p99 = run["sample"]["p50"], run["sample"]["p99"]
    print(f"  each room p50 {p50:.1f} ms = {p50 / anchor['p50']:.0f}x the broker round trip "
          f"(+{p50 - anchor['p50']:.1f} ms); p99 {p99:.1f} ms (+{p99 - anchor['p99']:.1f} ms over its p99)")
    cpu = run["cpu_ms_per_event"]
    print(f"  CPU ms per event (a 911 and its acknowledgement): hub {cpu['hub']}, broker {cpu['broker']}, "
          f"agents {cpu['agents']} ({run['agent_cpu_ms_per_state']} per agent per state), bench {cpu['bench']}")
    memory = run["agent_memory"]
    print(f"  agent processes: VmRSS median {memory['rss_mib_median']} MiB (largest {memory['rss_mib_max']}), "
          f"RssAnon median {memory['anon_mib_median']} MiB, {memory['threads']} threads; "
          f"hub VmRSS {run['hub_memory']['rss_mib_median']} MiB")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100)
    parser.add_argument("--agents", default="1,10,50")
    parser.add_argument("--burst", type=int, default=300)
    parser.add_argument("--round-trips", type=int, default=1000)
    args = parser.parse_args()
    source = str(Path(__file__).resolve().parents[1] / "src")  # the hub and agents run this checkout's code too
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [source, os.environ.get("PYTHONPATH")]))
    info = machine()
    print(machine_line(info))
    print(f"load average at start: {load()}")
    runs = []
    burst: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="lamplighter-bench-hub-") as tmp, \
            tempfile.TemporaryDirectory(prefix="lamplighter-bench-agents-", dir=AGENT_DISK) as agents:
        for count in (int(n) for n in args.agents.split(",")):
            with Mosquitto(Path(tmp) / f"mqtt{count}", nodelay=True).start() as broker:  # a fresh broker
                anchor = summary_ms(await broker_round_trip(broker.port, args.round_trips))
                run = await latency(broker, Path(tmp), Path(agents), count, args.events)
            run["broker_round_trip"] = anchor
            runs.append(run)
            report(run, anchor)
        if args.burst:
            with Mosquitto(Path(tmp) / "mqtt-burst", nodelay=True).start() as broker:
                burst = await throughput(broker, Path(tmp), Path(agents), args.burst)
            print(f"hub throughput, 10 rooms: {burst['events_per_second']} events/s, {burst['states_per_second']} "
                  f"room states/s over {burst['seconds']} s; hub CPU {burst['hub_cpu_ms_per_event']} ms per event "
                  f"(load average {burst['load_before']} before, {burst['load_after']} after)")
    path = write_results("hub", {"machine": info, "latency": runs, "throughput": burst})
    print(f"wrote {path}")


if __name__ == "__main__":
    asyncio.run(main())
