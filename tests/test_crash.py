"""SIGKILL during a burst of posts: every event answered 202 is in the store after a restart,
and an active, unacknowledged 911 shows again."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.daemon import TOKEN, Daemon

pytestmark = pytest.mark.slow

CONFIG = ("levels: {911: {hold: until_ack}}\n"
          "guards: {rate_limit: {per_sender: null, per_source: null}}\n")


def post_until_refused(url: str, prefix: str, accepted: list[int], stop: threading.Event) -> None:
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5) as client:
        for n in range(100_000):
            if stop.is_set():
                return
            try:
                response = client.post("/api/events", json={"level": "912", "title": f"{prefix}-{n}"})
            except httpx.TransportError:
                return  # the daemon is gone: whatever was not answered was not accepted
            if response.status_code == 202:
                accepted.append(response.json()["id"])


def test_sigkill_during_a_burst_loses_no_accepted_event_and_the_911_resumes(tmp_path: Path) -> None:
    first = Daemon(tmp_path / "d", CONFIG).start()
    try:
        with first.client() as client:
            alarm = client.post("/api/events", json={"level": "911", "title": "payments down"}).json()["id"]
        accepted: list[int] = []
        stop = threading.Event()
        senders = [threading.Thread(target=post_until_refused, args=(first.url, f"c{i}", accepted, stop))
                   for i in range(2)]
        for sender in senders:
            sender.start()
        deadline = time.monotonic() + 10
        while len(accepted) < 300 and time.monotonic() < deadline:
            time.sleep(0.01)
        first.stop(signal.SIGKILL)  # mid-burst: both senders are still posting
        for sender in senders:
            sender.join(10)
        stop.set()
    finally:
        if first.process and first.process.poll() is None:
            first.process.kill()
    assert len(accepted) >= 300

    second = Daemon(tmp_path / "d", CONFIG, port=first.port).start()
    try:
        with second.client() as client:
            stored = {event["id"] for event in client.get("/api/events", params={"limit": 5000}).json()}
            assert set(accepted) - stored == set()  # nothing answered 202 was lost
            assert alarm in stored
            deadline = time.monotonic() + 5
            while True:
                desk = client.get("/api/lamps").json()[0]
                if desk["showing"] or time.monotonic() > deadline:
                    break
                time.sleep(0.01)
            assert desk["showing"]["event_id"] == alarm
            assert desk["state"]["color"] == "#ff0000"
    finally:
        second.stop()
