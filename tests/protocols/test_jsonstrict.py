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


def _same(a: object, b: object) -> bool:
    """Equal values of the same types, all the way down (1 and 1.0 differ here)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))  # type: ignore
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)  # type: ignore
    if isinstance(a, float):
        return repr(a) == repr(b)
    return a == b


_JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=4), c, max_size=4),
    max_leaves=12)
_NOISE = st.binary(max_size=40) | st.text(alphabet='[]{}",:0123456789.eE+-\\u dnNa', max_size=40)


def _verdict(f: object, raw: bytes) -> tuple[str, object]:
    try:
        return "ok", f(raw)  # type: ignore[operator]
    except JsonError:
        return "refused", None


@settings(max_examples=400, deadline=None)
@given(st.one_of(_JSONISH.map(lambda d: __import__("json").dumps(d).encode()),
                 _NOISE.map(lambda x: x if isinstance(x, bytes) else x.encode()),
                 st.tuples(_JSONISH, _NOISE).map(
                     lambda t: __import__("json").dumps(t[0]).encode()[:-1] + str(t[1]).encode())))
def test_fast_path_agrees_with_the_stdlib_path(raw: bytes) -> None:
    """orjson (the hot path) and the stdlib decoder (the reference) accept the same
    documents as the same values, and refuse the same ones."""
    from protocols.jsonstrict import _loads_stdlib

    fast, ref = _verdict(loads_strict, raw), _verdict(lambda r: _loads_stdlib(r, MAX_DEPTH), raw)
    assert fast[0] == ref[0]
    assert _same(fast[1], ref[1])


@pytest.mark.parametrize("raw", [
    b'{"seq": 18446744073709551616}', b"-9223372036854775809", b"123456789012345678901234",
    b"0.12345678901234567890123", b"1e400", b"-1e400", b'{"a": 1e309}',
])
def test_numbers_orjson_reads_otherwise_keep_the_stdlib_meaning(raw: bytes) -> None:
    """Beyond 64 bits orjson gives a float where the stdlib keeps an int, and it refuses
    1e400 where the stdlib reads infinity: both go through the stdlib path."""
    import json

    assert _same(loads_strict(raw), json.loads(raw))
