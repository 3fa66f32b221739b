"""The one strict JSON reader (issue 15): what it refuses, and that it stays cheap."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols import JsonError, loads_strict, validate_status, validate_telemetry
from protocols.jsonstrict import MAX_DEPTH, json_depth


@pytest.mark.parametrize("raw", [
    b"NaN", b"[Infinity]", b'{"a": -Infinity}', b"\xff", b'"\xed\xa0\x80"',  # CESU surrogate
    b'"\\ud800"', b'{"\\udfff": 1}', b'["a", "\\udc00b"]', b"[" * 33 + b"]" * 33,
    b"[" * 5000, b"", b"{", b"1 2",
])
def test_refused(raw: bytes) -> None:
    with pytest.raises(JsonError):
        loads_strict(raw)
    assert issubclass(JsonError, ValueError)


@pytest.mark.parametrize("raw,value", [
    (b'"\\ud83d\\ude00"', "\U0001f600"),  # a valid surrogate pair is a character
    (b"[" * MAX_DEPTH + b"]" * MAX_DEPTH, loads_strict(b"[" * MAX_DEPTH + b"]" * MAX_DEPTH)),
    (b'{"a": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}', {"a": "[" * 46}),
    (b'"\\u0000"', "\x00"),  # NUL is JSON; storing it is the validators' business
    (b"1e400", float("inf")),  # a number JSON allows; validation rejects it as not_finite
    ('{"a": 1}', {"a": 1}),
])
def test_accepted(raw: bytes | str, value: object) -> None:
    assert loads_strict(raw) == value


@settings(max_examples=200, deadline=None)
@given(st.recursive(st.none() | st.integers() | st.text(alphabet="[]{}\"\\ab,:"),
                    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=3), c,
                                                                         max_size=3)))
def test_depth_scan_agrees_with_the_structure(doc: object) -> None:
    import json

    def depth(x: object) -> int:
        if isinstance(x, list):
            return 1 + max((depth(c) for c in x), default=0)
        if isinstance(x, dict):
            return 1 + max((depth(c) for c in x.values()), default=0)
        return 0

    assert json_depth(json.dumps(doc).encode()) == depth(doc)


def test_validators_use_it() -> None:
    deep = b'{"state": "online", "x": ' + b"[" * 40 + b"]" * 40 + b"}"
    record, rejection = validate_status("t", deep, "s", 1.8e9, "air-0001")
    assert record is None and rejection is not None and rejection.reason == "not_json"
    out = validate_telemetry("t", b'{"v": 1, "boot": NaN}', "s", 1.8e9, "air-0001")
    assert [r.reason for r in out.rejections] == ["not_json"]
