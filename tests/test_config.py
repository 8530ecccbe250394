"""The configuration file: defaults, merging levels, ${ENV} secrets, and errors with their place."""

from pathlib import Path

import pytest

from lamplighter.config import Config, load_config, parse_config
from lamplighter.errors import ConfigError
from lamplighter.model import UNTIL_ACK, Effect


def problems_of(text: str, env: dict[str, str] | None = None) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, env or {}, name="ll.yaml")
    return caught.value.problems


def test_no_file_gives_the_embedded_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    loaded = load_config(None, env={})
    assert loaded.path is None
    assert loaded.config.lamps == {"desk": "virtual://desk"}
    levels = loaded.config.resolved_levels()
    assert {name: (lv.color, lv.hold) for name, lv in levels.items()} == {
        "911": ("#ff0000", 10.0), "912": ("#ffd000", 10.0), "door": ("#00ff00", 10.0), "blind": ("#8000ff", None)}
    assert levels["blind"].priority < levels["912"].priority
    assert levels["911"].priority > levels["door"].priority > levels["912"].priority
    assert levels["911"].quiet_hours_bypass and not levels["912"].quiet_hours_bypass


def test_config_is_found_by_env_then_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "lamplighter.yaml").write_text("lamps: {a: virtual://a}\n")
    other = tmp_path / "other.yaml"
    other.write_text("lamps: {b: virtual://b}\n")
    assert load_config(None, env={}).config.lamps == {"a": "virtual://a"}
    assert load_config(None, env={"LAMPLIGHTER_CONFIG": str(other)}).config.lamps == {"b": "virtual://b"}
    assert load_config(other, env={"LAMPLIGHTER_CONFIG": "/nope"}).path == other


def test_user_levels_override_defaults_field_by_field_and_add_new_ones() -> None:
    config = parse_config(
        "lamps: {desk: virtual://desk, hall: virtual://hall}\n"
        "levels:\n"
        "  911: {hold: until_ack, effect: blink, lamps: [hall]}\n"
        "  deploy: {color: '#0080ff', priority: 50, hold: 2m, brightness: 30}\n", env={})
    levels = config.resolved_levels()
    assert levels["911"].hold is UNTIL_ACK
    assert levels["911"].effect is Effect.BLINK
    assert levels["911"].color == "#ff0000"  # kept from the default
    assert levels["911"].lamps == ("hall",)
    assert (levels["deploy"].color, levels["deploy"].priority, levels["deploy"].hold) == ("#0080ff", 50, 120.0)
    assert levels["deploy"].brightness == 30


def test_env_interpolation_fills_secrets_and_dollar_dollar_is_literal() -> None:
    text = "server: {token: '${TOKEN}'}\nlamps: {desk: 'virtual://desk'}\nstate_dir: /tmp/a$$b\n"
    config = parse_config(text, env={"TOKEN": "s3cret-0123456789abc"})
    assert config.server.token is not None and config.server.token.get_secret_value() == "s3cret-0123456789abc"
    assert "s3cret-0123456789abc" not in repr(config) and "s3cret-0123456789abc" not in str(config.server)
    assert str(config.state_dir) == "/tmp/a$b"


def test_missing_env_variable_is_reported_with_its_place() -> None:
    expected = [("ll.yaml:2 server.token", "environment variable NOPE is not set")]
    assert problems_of("server:\n  token: ${NOPE}\n") == expected


def test_every_problem_is_reported_with_line_and_path() -> None:
    text = ("server:\n"
            "  listen: localhost\n"
            "levels:\n"
            "  911:\n"
            "    color: rde\n"
            "    brightness: 300\n"
            "  custom: {hold: 5s}\n"
            "guards:\n"
            "  dedup_windw: 1m\n")
    found = dict(problems_of(text))
    assert set(found) == {"ll.yaml:2 server.listen", "ll.yaml:5 levels.911.color", "ll.yaml:6 levels.911.brightness",
                          "ll.yaml:9 guards.dedup_windw", "ll.yaml:7 levels.custom"}  # all in one pass
    assert found["ll.yaml:7 levels.custom"] == "level 'custom' is new and needs color and priority"
    assert "HOST:PORT" in found["ll.yaml:2 server.listen"]
    assert "unknown colour 'rde'" in found["ll.yaml:5 levels.911.color"]
    assert "unknown key" in found["ll.yaml:9 guards.dedup_windw"]


def test_every_duration_is_one_type_reported_with_line_and_path() -> None:
    text = ("levels:\n"
            "  911: {hold: forever, escalate_after: 2 min}\n"
            "guards:\n"
            "  dedup_window: soon\n"
            "  rate_limit:\n"
            "    per_sender: {every: 0s, burst: 2}\n")
    hint = "(use e.g. 10s, 2m, 1h)"
    assert problems_of(text) == [("ll.yaml:2 levels.911.hold", f"not a duration: 'forever' {hint}"),
                                 ("ll.yaml:2 levels.911.escalate_after", f"not a duration: '2 min' {hint}"),
                                 ("ll.yaml:4 guards.dedup_window", f"not a duration: 'soon' {hint}"),
                                 ("ll.yaml:6 guards.rate_limit.per_sender.every", "must be longer than 0s")]


def test_new_level_needs_colour_and_priority() -> None:
    [(place, message)] = problems_of("levels:\n  custom: {hold: 5s}\n")
    assert place == "ll.yaml:2 levels.custom" and "needs color and priority" in message


def test_level_naming_an_unknown_lamp_is_refused() -> None:
    [(place, message)] = problems_of("levels:\n  911:\n    lamps: [kitchen]\n")
    assert place == "ll.yaml:3 levels.911.lamps.0" and "'kitchen'" in message


def test_broken_yaml_names_the_line() -> None:
    [(place, message)] = problems_of("lamps:\n  desk: [unclosed\n")
    assert place.startswith("ll.yaml:") and "not valid YAML" in message


def test_quiet_hours_accept_one_window_or_a_list_and_check_days_and_zones() -> None:
    one = parse_config("guards: {quiet_hours: {start: '22:00', end: '07:00'}}\n", env={})
    assert len(one.guards.quiet_hours) == 1
    found = dict(problems_of("guards:\n  quiet_hours:\n    - {start: '22:00', end: '07:00', days: [mon, funday],"
                             " timezone: Mars/Olympus}\n"))
    assert any("funday" in m for m in found.values()) and any("Mars/Olympus" in m for m in found.values())


def test_the_starter_config_is_valid() -> None:
    from importlib.resources import files

    text = files("lamplighter.cli").joinpath("starter.yaml").read_text()
    config = parse_config(text, env={})
    assert config.resolved_levels().keys() == Config().resolved_levels().keys()


def test_sirens_make_their_levels_wait_for_an_acknowledgement() -> None:
    config = parse_config("sirens: {hall: 'console://siren'}\nlevels:\n  deploy: {color: blue, priority: 5}\n"
                          "  912: {sirens: [hall], escalate_after: 10m}\n", env={})
    levels = config.resolved_levels()
    assert (levels["911"].sirens, levels["911"].hold, levels["911"].escalate_after) == (("hall",), UNTIL_ACK, 120)
    assert (levels["912"].sirens, levels["912"].hold, levels["912"].escalate_after) == (("hall",), UNTIL_ACK, 600)
    assert (levels["deploy"].sirens, levels["deploy"].hold) == ((), 10.0)
    without = parse_config("", env={}).resolved_levels()
    assert (without["911"].sirens, without["911"].hold) == ((), 10.0)  # no siren: the 10 s hold


def test_siren_names_are_checked() -> None:
    found = dict(problems_of("lamps: {desk: 'virtual://desk'}\nsirens: {desk: 'console://x'}\n"
                             "levels:\n  911: {sirens: [horn]}\n"))
    assert found["ll.yaml:2 sirens.desk"] == "'desk' is a lamp too: give the siren another name"
    assert found["ll.yaml:4 levels.911.sirens.0"] == "no siren named 'horn' under sirens:"


def test_a_wrong_value_does_not_hide_a_wrong_reference_but_a_wrong_lamps_section_does_not_invent_one() -> None:
    found = dict(problems_of("palette: pastel\nlamps: {desk: 'virtual://desk'}\nlevels: {door: {lamps: [porch]}}\n"))
    assert set(found) == {"ll.yaml:1 palette", "ll.yaml:3 levels.door.lamps.0"}
    assert found["ll.yaml:3 levels.door.lamps.0"] == "no lamp named 'porch' under lamps:"
    # lamps: as a whole is wrong: its default (desk) would make `porch` look unknown; only the real problem is told
    assert problems_of("lamps: [porch]\nlevels: {door: {lamps: [porch]}}\n") == [
        ("ll.yaml:1 lamps", "Input should be a valid dictionary")]
