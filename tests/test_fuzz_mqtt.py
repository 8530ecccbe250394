"""Property: any message on an `mqtt` source's topic, under rules with any valid templates, becomes events
or is skipped with an error the source's dispatch logs (ValueError, TypeError, our own); the message
that follows is still handled. Deep nesting (issue 12 item 3) has a target of its own.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

from hypothesis import assume, given
from hypothesis import strategies as st

from lamplighter.errors import ConfigError, LamplighterError
from lamplighter.model import Event, Outcome, Receipt
from lamplighter.sources import build_sources
from lamplighter.sources.mqtt import MqttSource, check_template, render
from tests.conftest import FakeClock
from tests.fuzzing import KEYS, TEXT, TRIED, budget, json_values, mutated

DISPATCH_LOGS = (ValueError, TypeError, LamplighterError)  # what BrokerSource._dispatch logs and skips
PATHS = st.sampled_from(["topic", "payload", "payload.state", "payload.after.label", "payload.0", "payload.a.b.c"])
TEMPLATES = st.lists(st.sampled_from(["{", "}", "{{", "}}", "x", " "]) | PATHS.map(lambda p: f"{{{p}}}") | TEXT,
                     max_size=5).map("".join)
FRIGATE_LIKE = {"type": "new", "after": {"label": "person", "camera": "door", "score": 0.9}, "state": "ON"}
PAYLOADS = (st.one_of(mutated(FRIGATE_LIKE), json_values()).map(lambda doc: json.dumps(doc).encode())
            | st.binary(max_size=100) | st.sampled_from([b"ON", b"off", b"", b"null", b"1e999"]))


def collect(events: list[Event]) -> Any:
    def submit(event: Event) -> Receipt:
        events.append(event)
        return Receipt(len(events), Outcome.SHOWN, (), None, None)
    return submit


@budget(200)
@given(template=TEMPLATES, topic=TEXT, payload=json_values())
def test_a_template_is_refused_at_check_or_renders_or_names_the_missing_field(template: str, topic: str,
                                                                              payload: Any) -> None:
    TRIED["mqtt: templates"] += 1
    try:
        check_template(template)
    except ValueError:
        return
    with contextlib.suppress(DISPATCH_LOGS):
        assert isinstance(render(template, topic, payload), str)


@budget(200)
@given(rule=st.fixed_dictionaries({"topic": st.just("home/#"), "level": st.sampled_from(["911", "{payload.state}"]),
                                   "title": TEMPLATES, "key": TEMPLATES, "status": st.sampled_from(
                                       ["firing", "{payload.state}", "{payload}"]),
                                   "when": st.dictionaries(PATHS, json_values(), max_size=2),
                                   "resolve_when": st.dictionaries(PATHS, json_values(), max_size=2)}),
       messages=st.lists(st.tuples(st.sampled_from(["home/door", "home/a/b", "other"]) | KEYS, PAYLOADS,
                                   st.booleans()), min_size=1, max_size=4))
def test_any_message_becomes_events_or_a_logged_skip(rule: dict[str, Any], messages: list[Any]) -> None:
    TRIED["mqtt: messages under fuzzed rules"] += 1
    try:
        built = build_sources([{"type": "mqtt", "broker": "127.0.0.1", "topics": [rule]}], FakeClock())
    except ConfigError:
        assume(False)
    source = built["mqtt"]
    assert isinstance(source, MqttSource)
    events: list[Event] = []
    for topic, payload, retained in messages:
        with contextlib.suppress(DISPATCH_LOGS):
            source.on_message(topic, payload, retained, collect(events))
    assert all(event.level and event.title and event.source == "mqtt" for event in events)


def test_a_deeply_nested_payload_is_skipped_like_any_bad_message() -> None:
    source = build_sources([{"type": "mqtt", "broker": "127.0.0.1", "topics": [{"topic": "t", "level": "911"}]}],
                           FakeClock())["mqtt"]
    assert isinstance(source, MqttSource)
    with contextlib.suppress(DISPATCH_LOGS):
        source.on_message("t", b"[" * 50_000 + b"]" * 50_000, False, collect([]))
