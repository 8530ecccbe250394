"""The token bucket as a table under a fake clock, and the router's budget when its memory is pruned."""

from __future__ import annotations

import pytest

from lamplighter.model import Outcome, make_event
from lamplighter.rules.ratelimit import TokenBucket, describe_rate
from tests.test_router import Harness

EVERY, BURST = 3.0, 2


def run(steps: list[tuple[str, float]]) -> list[bool]:
    """Play (action, time) steps on one bucket: `take` answers whether a token was there and takes it;
    `peek` (a memory prune looking at an older moment) answers whether the bucket is full."""
    bucket, answers = TokenBucket.full(EVERY, BURST, 0.0), []
    for action, at in steps:
        if action == "take":
            answers.append(bucket.has_token(at))
            if answers[-1]:
                bucket = bucket.take(at)
        else:
            answers.append(bucket.tokens_at(at) >= BURST)
    return answers


@pytest.mark.parametrize(("steps", "expected"), [
    ([("take", 0), ("take", 0), ("take", 0)], [True, True, False]),
    ([("take", 0), ("take", 0), ("take", 2.9), ("take", 3.0)], [True, True, False, True]),
    ([("take", 0), ("take", 0), ("take", 6.0), ("take", 6.0), ("take", 6.0)], [True, True, True, True, False]),
    ([("take", 0), ("take", 0), ("take", 100), ("take", 100), ("take", 100)], [True, True, True, True, False]),
    # a look at an earlier moment changes nothing and is answered at the bucket's own time
    ([("take", 10), ("take", 10), ("peek", 0), ("take", 10), ("take", 12.9)], [True, True, False, False, False]),
    ([("take", 10), ("take", 10), ("peek", 5), ("take", 13)], [True, True, False, True]),
    # an event routed late with an earlier time does not get the refill twice
    ([("take", 10), ("take", 10), ("take", 9), ("peek", 0), ("take", 12.9)], [True, True, False, False, False]),
])
def test_the_bucket_refills_once_and_its_clock_never_goes_back(steps: list[tuple[str, float]],
                                                               expected: list[bool]) -> None:
    assert run(steps) == expected


def test_a_bucket_is_a_value() -> None:
    bucket = TokenBucket.full(EVERY, BURST, 0.0)
    taken = bucket.take(1.0)
    assert (bucket.tokens, taken.tokens, taken.updated_at) == (2.0, 1.0, 1.0)
    assert taken.take(0.5).updated_at == 1.0


def test_a_big_batch_keeps_the_source_budget_while_memory_is_pruned() -> None:
    """Issue 12 item 7: 11,000 alerts received at one moment, routed over 3.3 s; each prune of the router's
    memory (at the alerts' received_at) used to set the buckets' clocks back and refill them again."""
    h = Harness("guards: {rate_limit: {per_sender: {every: 30s, burst: 2}, per_source: {every: 3s, burst: 20}}}\n")
    received_at, shown = 1000.0, 0
    for i in range(11_000):
        now = received_at + i * 0.0003  # 3.3 s of routing
        event = make_event("912", f"alert {i}", received_at=received_at, key=f"fp-{i}", source="am", sender=f"a/{i}")
        verdict = h.router.route(event, h.active, now)
        h.commit(event, verdict)
        h.active.clear()
        h.router.prune_above = 50  # prune often, as 11,000 senders' buckets do past the real threshold
        shown += verdict.outcome is Outcome.SHOWN
    assert shown <= 20 + int(3.3 / 3) + 1  # the burst, plus one per 3 s of routing


@pytest.mark.parametrize(("burst", "every", "words"), [
    (2, 30.0, "2 at once, then one every 30s"),
    (20, 3.0, "20 at once, then one every 3s"),
    (1, 90.0, "one every 1m30s"),
])
def test_a_bucket_is_described_as_the_configuration_says_it(burst: int, every: float, words: str) -> None:
    assert describe_rate(burst, every) == words
