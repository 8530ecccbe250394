"""Long work on the loop in turns (lamplighter/turns.py): others get the loop between turns.

Also: a webhook batch is read that way, and a bad alert deep in it still refuses the whole request.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator

import pytest

from lamplighter.errors import EventError
from lamplighter.turns import drawn_in_turns
from tests.conftest import START
from tests.test_hooks_alertmanager import hook

pytestmark = pytest.mark.timeout(30)


async def test_other_tasks_run_between_turns_and_every_item_is_drawn_in_order() -> None:
    ticks = 0

    async def other_request() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    def slow_items() -> Iterator[int]:
        for i in range(20):
            time.sleep(0.002)  # each item takes longer than a turn
            yield i

    other = asyncio.create_task(other_request())
    await asyncio.sleep(0)
    before = ticks
    drawn = await drawn_in_turns(slow_items(), turn=0.001)
    other.cancel()
    assert drawn == list(range(20))
    assert ticks - before >= 19  # a turn after every item: nobody waits for the whole batch


async def test_a_bad_alert_deep_in_a_big_batch_refuses_the_whole_batch() -> None:
    source = hook()
    alerts = [{"status": "firing", "labels": {"alertname": f"A{i}", "severity": "critical"}, "fingerprint": f"{i:x}"}
              for i in range(3000)]
    alerts[2500]["status"] = "exploded"
    body = json.dumps({"version": "4", "alerts": alerts}).encode()
    with pytest.raises(EventError) as refused:
        await source.read({}, body, START)
    assert refused.value.field == "alerts.2500.status"
    del alerts[2500]
    read = await source.read({}, json.dumps({"version": "4", "alerts": alerts}).encode(), START)
    assert [event.key for event in read] == [alert["fingerprint"] for alert in alerts]
