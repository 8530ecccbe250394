"""Issue 12 (hostile input), items 7, 8, 9, 15, 16 and 17: each attack replayed through the interface it used."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable

import httpx

from lamplighter.service import Service
from tests.serving import serving

API_TOKEN = "hostile-api-token-0123456789"
AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
AM_TOKEN = "am-token-0123456789"


def alertmanager_batch(count: int) -> bytes:
    alerts = [{"status": "firing", "labels": {"severity": "critical", "alertname": f"A{i}"}, "fingerprint": f"f{i}"}
              for i in range(count)]
    return json.dumps({"version": "4", "status": "firing", "alerts": alerts}).encode()


# ---- item 7: a big batch is one transaction and leaves the loop responsive -------------------------

async def _poll_healthz(client: httpx.AsyncClient, until: asyncio.Event) -> float:
    """The longest /healthz took while `until` is not set."""
    longest = 0.0
    while not until.is_set():
        started = time.monotonic()
        assert (await client.get("/healthz")).status_code == 200
        longest = max(longest, time.monotonic() - started)
        await asyncio.sleep(0.02)
    return longest


async def test_an_alertmanager_batch_of_11000_alerts_is_one_commit_and_keeps_healthz_answering(
        service_factory: Callable[..., Service]) -> None:
    service = service_factory(f"server: {{max_body_bytes: 2000000}}\nlamps: {{desk: virtual://desk}}\n"
                              f"sources:\n  - {{type: alertmanager, token: {AM_TOKEN}}}\n")
    inserts_per_commit, inserts = [], 0

    def trace(sql: str) -> None:
        nonlocal inserts
        inserts += sql.startswith("INSERT INTO events")
        if sql == "COMMIT" and inserts:
            inserts_per_commit.append(inserts)
            inserts = 0

    service.store._db.set_trace_callback(trace)
    body = alertmanager_batch(11_000)
    async with serving(service, API_TOKEN) as url, httpx.AsyncClient(base_url=url, timeout=30) as client:
        done = asyncio.Event()
        poller = asyncio.create_task(_poll_healthz(client, done))
        await asyncio.sleep(0.05)
        answer = await client.post("/hooks/alertmanager", content=body,
                                   headers={"Authorization": f"Bearer {AM_TOKEN}", "Content-Type": "application/json"})
        done.set()
        longest = await poller
        stored = service.store.count_events()
    assert answer.status_code == 202 and len(answer.json()["events"]) == 11_000
    assert stored == 11_000
    assert inserts_per_commit == [11_000]  # one transaction, one fsync
    assert longest < 2.5  # 3.3 s with one fsync per alert; ~0.7 s now (parsing and routing 11,000 alerts)
