"""The journal queries behind the dashboard's timeline: filters by column, the values they offer, hours."""

from pathlib import Path

import pytest

from lamplighter.model import Outcome, make_event
from lamplighter.store import Store


def store_with_events(tmp_path: Path) -> Store:
    store = Store(tmp_path / "lamplighter.db")
    for at, level, sender, source in [(3600.0, "911", "alice", "api"), (3700.0, "912", "bob", "mail"),
                                      (7300.0, "911", "bob", "api")]:
        store.record_event(make_event(level, "x", received_at=at, sender=sender, source=source), Outcome.SHOWN, [])
    return store


def test_events_are_found_by_any_mix_of_level_source_sender_and_outcome(tmp_path: Path) -> None:
    store = store_with_events(tmp_path)
    assert [e.id for e in store.find_events({}, 10)] == [3, 2, 1]
    assert [e.id for e in store.find_events({"level": "911", "sender": "bob"}, 10)] == [3]
    assert [e.id for e in store.find_events({"source": "api", "outcome": "shown"}, 1)] == [3]
    assert store.find_events({"sender": "carol"}, 10) == []
    assert store.event_values("sender", 10) == ["bob", "alice"]
    assert store.events_per_hour(3600.0) == [(3600.0, "911", 1), (3600.0, "912", 1), (7200.0, "911", 1)]
    assert store.events_per_hour(7200.0) == [(7200.0, "911", 1)]


@pytest.mark.parametrize("column", ["title", "id; DROP TABLE events", ""])
def test_only_the_filterable_columns_can_be_asked_for(tmp_path: Path, column: str) -> None:
    store = store_with_events(tmp_path)
    with pytest.raises(ValueError, match="only level, source, sender, outcome"):
        store.find_events({column: "x"}, 10)
    with pytest.raises(ValueError, match="cannot be filtered"):
        store.event_values(column, 10)
    assert store.count_events() == 3
