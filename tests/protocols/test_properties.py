"""Property tests: the fast validators never raise, and agree with the pydantic models."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from protocols import (
    QUANTITIES,
    ProtocolError,
    Status,
    Telemetry,
    TopicError,
    encode_lines,
    encode_point,
    parse_line,
    parse_topic,
    validate_status,
    validate_telemetry,
)

DEVICE = "air-0001"
NOW = 1795351940.0
TOPIC = "livinglab/v1/bdnc-lab/air-0001/telemetry"

json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**40), 2**40),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=8))
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.text(max_size=6), inner, max_size=3)),
    max_leaves=6)

ABSENT = object()


def maybe(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly valid, sometimes absent, sometimes any JSON value."""
    return st.one_of(valid, valid, valid, st.just(ABSENT), json_values)


numbers = st.one_of(st.integers(-(2**33), 2**33), st.floats(allow_nan=False,
                                                              allow_infinity=False))
sensors = st.one_of(st.sampled_from(["scd41", "pms5003", "bme_280", "x" * 32]),
                    st.text(alphabet="abcxyz019_", min_size=1, max_size=32))
value_maps = st.dictionaries(
    st.one_of(st.sampled_from(sorted(QUANTITIES)), st.text(max_size=6)),
    st.one_of(numbers, json_scalars), min_size=1, max_size=5)


_AGES = st.one_of(st.integers(0, 2**40), st.floats(min_value=0, allow_infinity=False))


@st.composite
def valid_samples(draw: st.DrawFn) -> dict[str, Any]:
    s: dict[str, Any] = {"sensor": draw(sensors), "values": draw(value_maps)}
    if draw(st.booleans()):
        s["ts"] = draw(numbers)
    else:
        s["age"] = draw(_AGES)
    return s


# Values that break (or just fail to break) each rule, tried in place of a valid one.
EDGES: dict[str, list[Any]] = {
    "v": [2, 0, True, 1.0, "1", None, 1],
    "device": ["air-0002", "AIR-0001", "", 1, None, DEVICE],
    "boot": [-1, 2**31, 2**31 - 1, 0, 7.0, True, "7", None],
    "seq": [-1, 2**31, 2**31 - 1, 0, 1.5, False, None],
    "samples": [[], [5], {}, None, [{}]],
    "sensor": ["SCD41", "", "x" * 33, "x" * 32, "a-b", 41, None],
    "ts": [True, "1", None, -1, 1e300, 0, [1]],
    "age": [-0.001, 0, -1, True, None, "1", 1e300],
    "values": [{}, [], None, {f"q{i}": 1 for i in range(33)}, {f"q{i}": 1 for i in range(32)},
               {"co2": "x"}],
}
TOP_KEYS = ["v", "device", "boot", "seq", "samples"]
SAMPLE_KEYS = ["sensor", "ts", "age", "values"]
_EDGE_ST = {k: st.sampled_from(v) for k, v in EDGES.items()}
_TOP_KEY_ST = st.sampled_from([*TOP_KEYS, "extra"])
_SAMPLE_KEY_ST = st.sampled_from([*SAMPLE_KEYS, "extra"])
_OP_ST = st.sampled_from(["delete", "edge", "edge", "any"])
_COUNTER_ST = st.integers(0, 2**31 - 1)
_SAMPLES_ST = st.lists(valid_samples(), min_size=1, max_size=4)


@st.composite
def telemetry(draw: st.DrawFn) -> Any:
    """A valid message with 0..2 mutations (delete a key, or set it to an edge/any value).

    Strategies are built once at import: building them per example dominates run time.
    """
    if draw(st.integers(0, 4)) == 0:
        return draw(json_values)
    doc: dict[str, Any] = {"v": 1, "device": DEVICE, "boot": draw(_COUNTER_ST),
                           "seq": draw(_COUNTER_ST), "samples": draw(_SAMPLES_ST)}
    for _ in range(draw(st.integers(0, 2))):
        target: Any = doc
        key = draw(_TOP_KEY_ST)
        if draw(st.booleans()) and type(doc.get("samples")) is list and doc["samples"]:
            target = doc["samples"][draw(st.integers(0, len(doc["samples"]) - 1))]
            if type(target) is not dict:
                continue
            key = draw(_SAMPLE_KEY_ST)
        op = draw(_OP_ST)
        if op == "delete":
            target.pop(key, None)
        elif op == "edge" and key in _EDGE_ST:
            target[key] = draw(_EDGE_ST[key])
        else:
            target[key] = draw(json_values)
    return doc


def pydantic_accepts(doc: Any) -> bool:
    try:
        model = Telemetry.model_validate(doc)
    except ValidationError:
        return False
    return model.device == DEVICE  # the topic rule, which the model cannot see


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(telemetry())
def test_fast_validator_agrees_with_model(doc: Any) -> None:
    payload = json.dumps(doc, allow_nan=False).encode()
    out = validate_telemetry(TOPIC, payload, "bdnc-lab", NOW, DEVICE)
    fast = out.accepted is not None
    assert fast == pydantic_accepts(doc), (out.rejections, doc)
    if not fast:
        assert len(out.rejections) == 1


update_docs = st.fixed_dictionaries({}, optional={
    "version": maybe(st.text(max_size=5)),
    "state": maybe(st.sampled_from(["downloading", "staged", "confirmed", "refused",
                                    "rolled_back", "other"])),
    "reason": maybe(st.text(max_size=5)), "x": json_values,
}).map(lambda d: {k: v for k, v in d.items() if v is not ABSENT})

status_docs = st.fixed_dictionaries({}, optional={
    "state": maybe(st.sampled_from(["online", "offline", "other"])),
    "fw": maybe(st.text(max_size=5)), "board": maybe(st.text(max_size=5)),
    "update": maybe(update_docs),
    "ip": maybe(st.text(max_size=5)), "boot": maybe(st.integers(-2, 2**31 + 2)),
    "heap_free": maybe(st.integers(-2, 2**31 + 2)), "rssi": maybe(numbers),
    "uptime": maybe(numbers), "x": json_values,
})


@settings(max_examples=300, deadline=None)
@given(st.one_of(status_docs, status_docs, json_values))
def test_status_validator_agrees_with_model(doc: Any) -> None:
    if isinstance(doc, dict):
        doc = {k: v for k, v in doc.items() if v is not ABSENT}
    record, rejection = validate_status(
        "t", json.dumps(doc, allow_nan=False).encode(), "bdnc-lab", NOW, DEVICE)
    assert (record is None) == (rejection is not None)
    try:
        Status.model_validate(doc)
        model_ok = True
    except ValidationError:
        model_ok = False
    assert (record is not None) == model_ok, (rejection, doc)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300), st.text(max_size=40),
       st.floats(allow_nan=False, allow_infinity=False))
def test_validate_never_raises_on_bytes(payload: bytes, topic: str, now: float) -> None:
    out = validate_telemetry(topic, payload, "bdnc-lab", now, DEVICE)
    assert out.accepted is not None or len(out.rejections) == 1
    for r in out.rejections:
        json.loads(r.to_json())
    validate_status(topic, payload, "bdnc-lab", now, DEVICE)


@settings(max_examples=200, deadline=None)
@given(json_values, st.floats(min_value=0, max_value=4e9))
def test_validate_never_raises_on_json(doc: Any, now: float) -> None:
    payload = json.dumps({"v": 1, "device": DEVICE, "boot": 0, "seq": 0, "samples": [doc]})
    out = validate_telemetry(TOPIC, payload.encode(), "bdnc-lab", now, DEVICE)
    assert out.accepted is not None or out.rejections


@settings(max_examples=200, deadline=None)
@given(telemetry(), st.floats(min_value=1.6e9, max_value=2e9))
def test_accepted_points_encode(doc: Any, now: float) -> None:
    """Whatever is accepted is writable: every point encodes and parses back."""
    payload = json.dumps(doc, allow_nan=False).encode()
    out = validate_telemetry(TOPIC, payload, "bdnc-lab", now, DEVICE)
    for p in out.accepted.points if out.accepted else ():
        assert parse_line(encode_point(p)) == p


@settings(max_examples=300, deadline=None)
@given(telemetry(), st.floats(min_value=1.6e9, max_value=2e9))
def test_one_pass_encoding_is_the_points_encoded(doc: Any, now: float) -> None:
    """``encode=True`` (the gateway's hot path) gives exactly the bytes of the points
    :func:`encode_lines` writes, and the same rejections."""
    payload = json.dumps(doc, allow_nan=False).encode()
    ref = validate_telemetry(TOPIC, payload, "bdnc-lab", now, DEVICE)
    fast = validate_telemetry(TOPIC, payload, "bdnc-lab", now, DEVICE, encode=True)
    assert fast.rejections == ref.rejections
    if ref.accepted is None:
        assert fast.accepted is None
        return
    assert fast.accepted is not None and fast.accepted.points == ()
    assert fast.accepted.body == encode_lines(ref.accepted.points)
    assert fast.accepted[:3] == ref.accepted[:3]


@given(st.text(max_size=80))
def test_parse_topic_raises_only_topic_error(topic: str) -> None:
    try:
        info = parse_topic(topic)
    except TopicError:
        return
    assert info.site and (info.device or info.gateway)


@given(st.text(max_size=80))
def test_parse_line_raises_only_protocol_error(line: str) -> None:
    try:
        parse_line(line)
    except ProtocolError:
        pass
