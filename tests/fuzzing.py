"""What the property-based tests (tests/test_fuzz_*.py) share: their budget, their strategies, a daemon.

Budget: each target tries a small fixed number of examples in `make test` (the whole set stays
under a minute on a slow machine); `LAMPLIGHTER_FUZZ_EXAMPLES=N` gives every target N examples.
The number each target tried is printed at the end of the run. An example that takes longer
than HANG_SECONDS fails as a hang (every HTTP call has a timeout too).

Strategies are honest: JSON of every shape, text of every Unicode category (lone surrogates
included), bytes of every value. Deep nesting, out-of-range numbers and URLs urllib cannot
split have targets of their own as well.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from lamplighter.config import parse_config
from lamplighter.service import Service
from tests.conftest import FakeClock
from tests.serving import serving

EXAMPLES = int(os.environ.get("LAMPLIGHTER_FUZZ_EXAMPLES", "0"))
TRIED: Counter[str] = Counter()  # examples run per target, reported at the end of the session (conftest.py)
HANG_SECONDS = 5.0  # generous for a slow shared machine; the N^4 mail of issue 12 item 2 took minutes
API_TOKEN = "fuzz-api-token-0123456789"
AUTH = {"Authorization": f"Bearer {API_TOKEN}"}


def budget(examples: int) -> settings:
    """Hypothesis settings for one target: `examples` tries, or LAMPLIGHTER_FUZZ_EXAMPLES when set; an
    example that takes over HANG_SECONDS (twice: Hypothesis checks) fails as a hang."""
    return settings(max_examples=EXAMPLES or examples, deadline=timedelta(seconds=HANG_SECONDS), derandomize=False,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                           HealthCheck.filter_too_much, HealthCheck.data_too_large])


TEXT = st.text(max_size=40)  # every category, lone surrogates (Cs) too
KEYS = st.text(max_size=12)
SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | TEXT


def json_values(leaves: st.SearchStrategy[Any] = SCALARS) -> st.SearchStrategy[Any]:
    """Any JSON value, nested a few levels (deeper nesting has a target of its own)."""
    return st.recursive(leaves, _containers, max_leaves=20)


def _containers(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=4)


def mutated(sample: Any) -> st.SearchStrategy[Any]:
    """A document of the sample's shape whose every value may be replaced by any JSON value."""
    if isinstance(sample, dict):
        return st.fixed_dictionaries({key: mutated(value) for key, value in sample.items()},
                                     optional={"extra": json_values()}) | json_values()
    if isinstance(sample, list):
        return st.lists(mutated(sample[0]), max_size=3) if sample else json_values()
    return st.just(sample) | json_values()


class _Tracebacks(logging.Handler):
    """Collects every log record that carries a traceback."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info:
            self.records.append(record)


@dataclass
class Daemon:
    """A service served by uvicorn on loopback from a thread of its own, for synchronous tests.

    `tracebacks` lists what the daemon logged with a traceback (the root logger and uvicorn's)."""

    service: Service
    url: str
    tracebacks: list[logging.LogRecord]

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=10)


@pytest.fixture(name="daemon")
def fresh_daemon(shared_daemon: Daemon) -> Daemon:
    """A fuzz module's daemon (its own `shared_daemon` fixture), with what it logged before this test forgotten."""
    shared_daemon.tracebacks.clear()
    return shared_daemon


@contextlib.contextmanager
def daemon_in_thread(state_dir: Path, yaml_text: str) -> Iterator[Daemon]:
    """Serve a service built from `yaml_text` for the block (its loop runs in a thread)."""
    service = Service(parse_config(f"state_dir: {state_dir}\n{yaml_text}", env={}), clock=FakeClock())
    ready, stop = threading.Event(), threading.Event()
    url: list[str] = []

    async def run() -> None:
        async with serving(service, API_TOKEN) as base_url:
            url.append(base_url)
            ready.set()
            while not stop.is_set():
                await asyncio.sleep(0.02)

    thread = threading.Thread(target=asyncio.run, args=(run(),), name="fuzzed daemon")
    thread.start()
    tracebacks = _Tracebacks()
    loggers = [logging.getLogger(), logging.getLogger("uvicorn.error")]  # uvicorn's does not propagate
    try:
        assert ready.wait(15), "the daemon did not start within 15 s"
        for logger in loggers:  # once uvicorn has configured its logging, which replaces its handlers
            logger.addHandler(tracebacks)
        yield Daemon(service, url[0], tracebacks.records)
    finally:
        for logger in loggers:
            logger.removeHandler(tracebacks)
        stop.set()
        thread.join(15)
        assert not thread.is_alive(), "the daemon did not stop within 15 s"
