"""The JSON depth bound (untrusted.json_depth): exact on any valid JSON, bounded on anything.

The depth is what stops a bracket bomb before the parser recurses, and it runs on every
JSON body, so it must be both right (a deep body never passes, a normal one never fails)
and fast on a big batch (it once was 86 ms of an 11,000-alert batch, holding the GIL).
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lamplighter.errors import PayloadError
from lamplighter.untrusted import MAX_JSON_DEPTH, json_depth, load_json

# Strings full of what could fool a scanner: brackets, quotes, backslashes, escapes.
tricky_text = st.text(alphabet=st.sampled_from(list('[]{}"\\/ab\u00e9\ud55c\n\t')), max_size=12)
scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | tricky_text
documents = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                         | st.dictionaries(tricky_text, inner, max_size=4), max_leaves=40)


def nesting(value: Any) -> int:
    """The depth of parsed JSON: the oracle."""
    if isinstance(value, list):
        return 1 + max(map(nesting, value), default=0)
    if isinstance(value, dict):
        return 1 + max(map(nesting, value.values()), default=0)
    return 0


@settings(max_examples=300, deadline=None)
@given(documents, st.booleans(), st.sampled_from([None, 0, 2]))
def test_the_depth_of_valid_json_is_exact(document: Any, ascii_only: bool, indent: int | None) -> None:
    body = json.dumps(document, ensure_ascii=ascii_only, indent=indent).encode("utf-8", "surrogatepass")
    assert json_depth(body) == nesting(document)


@pytest.mark.parametrize(("depth", "wrapped_in_strings"),
                         [(64, False), (65, False), (64, True), (65, True), (3000, True)])
def test_deep_json_is_refused_and_strings_cannot_hide_or_fake_depth(depth: int, wrapped_in_strings: bool) -> None:
    # brackets, an escaped backslash and an escaped quote inside a string
    noise = '"]]]}}\\\\\\"[[{", ' if wrapped_in_strings else ""
    body = ("[" + noise) * depth + "1" + "]" * depth
    if depth <= MAX_JSON_DEPTH:
        assert load_json(body.encode()) is not None
    else:
        with pytest.raises(PayloadError, match="nested deeper than 64"):
            load_json(body.encode())


@pytest.mark.parametrize("body", [b"[" * 200_000, b"{" * 100 + b"]" * 100, b"]" * 50 + b"[" * 70,
                                  b'"' + b"[" * 1000, b"[" * 100 + b'"\\', b"\\" * 1001 + b'"[[['])
def test_broken_json_gets_an_error_naming_it_never_a_crash(body: bytes) -> None:
    with pytest.raises(PayloadError):
        load_json(body)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200) | st.text(alphabet=st.sampled_from(list('[]{}"\\ 1,:')), max_size=200).map(str.encode))
def test_any_bytes_get_a_depth_or_a_payload_error(data: bytes) -> None:
    assert 0 <= json_depth(data) <= len(data)
    with contextlib.suppress(PayloadError):  # anything else (a RecursionError) fails the test
        load_json(data)
