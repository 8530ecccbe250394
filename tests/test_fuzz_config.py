"""Property: any configuration text is a Config or a ConfigError that names each problem; any lamp URL
builds a driver whose printed URL parses back to itself, or is a LampUrlError. Nothing else, no traceback.

The shapes that once gave a traceback (issue 12 items 11 and 13: `.inf` durations, 400-digit
numbers, `wled://[::1`, duplicate keys) have a target of their own besides the random ones.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from hypothesis import example, given
from hypothesis import strategies as st

from lamplighter.config import parse_config
from lamplighter.drivers.registry import build_driver, driver_classes
from lamplighter.errors import ConfigError, LampUrlError
from lamplighter.service import validate
from tests.fuzzing import KEYS, TEXT, TRIED, budget

SCHEMES = sorted(driver_classes())
HOSTS = st.sampled_from(["10.0.0.2", "desk", "[fe80::1]", "bridge.local", "KEY@10.0.0.2", "u:p@h", ""]) | KEYS
PORTS = st.sampled_from(["", ":80", ":0", ":65536", ":x"])
PATHS = st.sampled_from(["", "/lights/3", "/light.desk", "/Office_Lamp", "/a/b/c", "/%zz"]) | KEYS.map("/{}".format)
QUERIES = st.lists(st.tuples(st.sampled_from(["timeout", "on", "color", "brightness", "token", "tone", "x"]) | KEYS,
                             st.sampled_from(["1", "true", "red", "-1", "1e3", ""]) | KEYS), max_size=3).map(
    lambda pairs: ("?" + "&".join(f"{k}={v}" for k, v in pairs)) if pairs else "")


URLS = (st.builds("{}://{}{}{}{}".format, st.sampled_from(SCHEMES) | KEYS, HOSTS, PORTS, PATHS, QUERIES)
        | TEXT)

WORDS = st.sampled_from(["lamps", "sirens", "levels", "sources", "guards", "server", "state_dir", "quiet_hours",
                         "911", "912", "door", "color", "hold", "effect", "priority", "type", "webhook", "token",
                         "rate_limit", "per_sender", "every", "burst", "listen", "max_body_bytes", "header_timeout"])
VALUES = (st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=False, allow_infinity=False,
                                                                             width=32)
          | st.sampled_from(["virtual://desk", "red", "10s", "5m", "blink", "127.0.0.1:0", "${MISSING}"]) | TEXT)


def _sections(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.lists(inner, max_size=3) | st.dictionaries(WORDS | KEYS, inner, max_size=4)


DOCUMENTS = st.recursive(VALUES, _sections, max_leaves=15)


@budget(300)
@given(url=URLS)
def test_a_lamp_url_builds_a_driver_that_prints_back_or_says_why(url: str) -> None:
    TRIED["config: lamp URLs"] += 1
    try:
        driver = build_driver(url)
    except LampUrlError:
        return
    printed = driver.url(privacy=False)
    assert build_driver(printed).url(privacy=False) == printed


def _config_text(document: dict[str, Any]) -> str:
    return yaml.safe_dump({"state_dir": "/nonexistent/lamplighter-fuzz", **document}, allow_unicode=True)


@budget(200)
@given(document=st.dictionaries(WORDS, DOCUMENTS, max_size=5) | st.fixed_dictionaries(
    {"lamps": st.dictionaries(KEYS, URLS, max_size=3)}))
def test_any_configuration_is_a_config_or_names_its_problems(document: dict[str, Any]) -> None:
    TRIED["config: documents"] += 1
    try:
        config = parse_config(_config_text(document), env={})
    except ConfigError as exc:
        assert exc.problems and all(message for _, message in exc.problems)
        return
    assert all(message for _, message in validate(config))


@budget(200)
@given(text=st.text(max_size=200))
@example(text="=")  # composed, yet not constructed: was a yaml ConstructorError traceback
@example(text="a: !!python/name:os.system x")
def test_any_text_is_a_config_or_a_config_error(text: str) -> None:
    TRIED["config: raw text"] += 1
    try:
        parse_config(text, env={})
    except ConfigError as exc:
        assert exc.problems


@pytest.mark.parametrize("text", [
    "levels: {911: {hold: .inf}}\nlamps: {desk: virtual://desk}\n",
    "levels: {911: {hold: " + "9" * 400 + "s}}\nlamps: {desk: virtual://desk}\n",
    "lamps: {desk: 'wled://[::1'}\n",
    "lamps: {desk: 'virtual://[desk]'}\n",
    "lamps: {desk: virtual://desk}\nlamps: {hall: virtual://hall}\n",
])
def test_known_tracebacks_of_check_are_config_errors(text: str) -> None:
    with pytest.raises(ConfigError):
        config = parse_config(text, env={})
        problems = validate(config)
        assert problems
        raise ConfigError(problems)
