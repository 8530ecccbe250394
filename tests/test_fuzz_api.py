"""Property: no request to the HTTP API gives a 5xx, and every event answered 202 is in the journal.

schemathesis generates requests from the app's own OpenAPI schema (every route, its path and
query parameters, with and without the token) against the daemon on loopback; hypothesis
generates the bodies the schema does not describe (POST /api/events, ack, snooze, lamp test),
written with Python's json (so NaN and Infinity are sent too, as JavaScript senders do).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode
from schemathesis.openapi import from_url

from tests.fuzzing import (
    AUTH,
    KEYS,
    TEXT,
    TRIED,
    Daemon,
    budget,
    daemon_in_thread,
    fresh_daemon,  # noqa: F401  (the `daemon` fixture)
    json_values,
)

STREAMS = r"^/(lamp/\{name\}/events|dashboard/live)$"  # endless event streams: a request never ends by design


@pytest.fixture(scope="module")
def shared_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    with daemon_in_thread(Path(tmp_path_factory.mktemp("fuzz-api")),
                          "lamps: {desk: virtual://desk}\nsources:\n  - {type: webhook, name: kuma, token: t0123456789,"
                          " level: '911', title: '{msg}'}\n") as running:
        yield running


def test_no_request_from_the_openapi_schema_gives_a_5xx(daemon: Daemon) -> None:
    """schemathesis's pytest loader needs a pytest internal that pytest 9 removed, so its strategy is drawn here."""
    schema = from_url(f"{daemon.url}/api/openapi.json", headers=AUTH)
    schema = schema.exclude(path_regex=STREAMS)
    cases = schema.as_strategy(GenerationMode.POSITIVE) | schema.as_strategy(GenerationMode.NEGATIVE)

    @budget(300)
    @given(case=cases, token=st.booleans())
    def check(case: Case, token: bool) -> None:
        TRIED["api: every route from the OpenAPI schema (schemathesis)"] += 1
        response = case.call(base_url=daemon.url, headers=AUTH if token else {}, timeout=10)
        assert response.status_code < 500, f"{case.method} {case.formatted_path}: {response.text[:300]}"

    check()
    assert not daemon.tracebacks


EVENT_FIELDS = {"level": st.sampled_from(["911", "912", "door", "nope", ""]) | TEXT, "title": TEXT, "body": TEXT,
                "sender": TEXT, "key": TEXT, "status": st.sampled_from(["firing", "resolved"]) | TEXT,
                "labels": st.dictionaries(KEYS, TEXT | json_values(), max_size=4),
                "lamps": st.lists(st.sampled_from(["desk", "hall"]) | TEXT, max_size=3)}
EVENTS = st.fixed_dictionaries({}, optional={**EVENT_FIELDS, "extra": json_values()}) | json_values()


def test_any_event_body_is_202_or_a_4xx_and_every_accepted_event_is_stored(daemon: Daemon) -> None:
    accepted: list[int] = []
    with daemon.client() as client:

        @budget(150)
        @given(body=EVENTS)
        def check(body: Any) -> None:
            TRIED["api: POST /api/events bodies"] += 1
            answer = client.post("/api/events", content=json.dumps(body), headers=AUTH)
            assert answer.status_code in (202, 400, 422), answer.text
            if answer.status_code == 202:
                accepted.append(answer.json()["id"])

        check()
        stored = {event["id"] for event in client.get("/api/events", params={"limit": 5000}, headers=AUTH).json()}
    assert set(accepted) <= stored
    assert not daemon.tracebacks


DURATIONS = st.sampled_from(["5s", "30m", "1h", "0s", "-1s", "8d", "x"]) | TEXT | st.integers() | st.floats()


@pytest.mark.parametrize(("path", "fields"), [
    ("/api/snooze", {"for": DURATIONS, "by": TEXT}),
    ("/api/lamps/desk/test", {"for": DURATIONS, "level": TEXT | st.sampled_from(["911", "door"])}),
])
def test_durations_in_bodies_are_accepted_or_refused_with_a_4xx(daemon: Daemon, path: str,
                                                                fields: dict[str, st.SearchStrategy[Any]]) -> None:
    with daemon.client() as client:

        @budget(60)
        @given(body=st.fixed_dictionaries({}, optional=fields) | json_values())
        def check(body: Any) -> None:
            TRIED[f"api: POST {path} bodies"] += 1
            answer = client.post(path, content=json.dumps(body), headers=AUTH)
            assert answer.status_code < 500, answer.text
            client.delete("/api/snooze", headers=AUTH)

        check()
    assert not daemon.tracebacks


def test_an_out_of_range_event_id_or_duration_is_a_4xx(daemon: Daemon) -> None:
    with daemon.client() as client:

        @budget(30)
        @given(event_id=st.integers(min_value=0), digits=st.integers(min_value=1, max_value=400))
        @example(event_id=99999999999999999999999, digits=400)
        def check(event_id: int, digits: int) -> None:
            for path, body in ((f"/api/events/{event_id}/ack", {}), (f"/api/events/{event_id}/snooze", {"for": "1m"}),
                               ("/api/snooze", {"for": "9" * digits})):
                answer = client.post(path, json=body, headers=AUTH)
                assert answer.status_code < 500, f"{path}: {answer.text}"

        check()
