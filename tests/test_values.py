"""Colours and durations: the small grammars every face of Lamplighter accepts."""

import pytest

from lamplighter.errors import EventError
from lamplighter.model import format_duration, make_event, parse_color, parse_duration


@pytest.mark.parametrize(("text", "expected"), [
    ("red", "#ff0000"), ("Yellow", "#ffd000"), (" green ", "#00ff00"),
    ("#FFAA00", "#ffaa00"), ("12ab34", "#12ab34"),
])
def test_colors_accept_names_and_hex(text: str, expected: str) -> None:
    assert parse_color(text) == expected


@pytest.mark.parametrize("text", ["rde", "#ff00", "#gggggg", ""])
def test_unknown_colors_are_named_in_the_error(text: str) -> None:
    with pytest.raises(ValueError, match="unknown colour"):
        parse_color(text)


@pytest.mark.parametrize(("text", "seconds"), [
    ("10s", 10.0), ("2m", 120.0), ("1.5h", 5400.0), ("250ms", 0.25), ("1d", 86400.0), (30, 30.0), ("45", 45.0),
])
def test_durations(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["ten seconds", "10x", "-5s", "", True])
def test_bad_durations_are_refused(text: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)  # type: ignore[arg-type]


@pytest.mark.parametrize(("seconds", "text"), [(0, "0s"), (10, "10s"), (90, "1m30s"), (3600, "1h"), (3725, "1h2m5s")])
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"level": " ", "title": "x"}, "level"),
    ({"level": "911", "title": ""}, "title"),
    ({"level": "911", "title": "x", "status": "over"}, "status"),
])
def test_make_event_names_the_bad_field(kwargs: dict[str, str], field: str) -> None:
    with pytest.raises(EventError) as caught:
        make_event(received_at=0.0, **kwargs)
    assert caught.value.field == field


def test_dedup_key_defaults_to_level_and_title() -> None:
    assert make_event("911", "db down", received_at=0).dedup_key == "911:db down"
    assert make_event("911", "db down", received_at=0, key="fp-1").dedup_key == "fp-1"
