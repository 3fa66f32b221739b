"""Every rule of the contract's Validation section: one valid and one invalid case each."""

from __future__ import annotations

import json
from typing import Any

import pytest

from protocols import (
    Point,
    Rejection,
    RejectionReport,
    encode_lines,
    validate_status,
    validate_telemetry,
)
from protocols.validate import MIN_TIME, REASONS, Outcome

TOPIC = "livinglab/v1/bdnc-lab/air-0001/telemetry"
SITE = "bdnc-lab"
DEVICE = "air-0001"
NOW = 1795351940.0
TAGS = (("device", DEVICE), ("sensor", "scd41"), ("site", SITE))


def sample(**over: Any) -> dict[str, Any]:
    s: dict[str, Any] = {"sensor": "scd41", "ts": 1795351934.120,
                         "values": {"co2": 612, "temperature": 22.41, "humidity": 48.2}}
    s.update(over)
    return {k: v for k, v in s.items() if v is not DROP}


def message(**over: Any) -> dict[str, Any]:
    m: dict[str, Any] = {"v": 1, "device": DEVICE, "boot": 7, "seq": 1042, "samples": [sample()]}
    m.update(over)
    return {k: v for k, v in m.items() if v is not DROP}


DROP = object()


def run(payload: Any, device: str = DEVICE) -> Outcome:
    raw = payload if isinstance(payload, bytes) else json.dumps(
        payload, separators=(",", ":")).encode()
    return validate_telemetry(TOPIC, raw, SITE, NOW, device)


def reasons(out: Outcome) -> list[str]:
    return [r.reason for r in out.rejections]


def test_contract_example() -> None:
    doc = {"v": 1, "device": DEVICE, "boot": 7, "seq": 1042, "samples": [
        {"sensor": "scd41", "ts": 1795351934.120,
         "values": {"co2": 612, "temperature": 22.41, "humidity": 48.2}},
        {"sensor": "pms5003", "age": 12.5, "values": {"pm1_0": 3, "pm2_5": 5, "pm10": 7}}]}
    out = run(doc)
    assert out.rejections == ()
    assert out.accepted is not None
    assert (out.accepted.device, out.accepted.boot, out.accepted.seq) == (DEVICE, 7, 1042)
    assert encode_lines(out.accepted.points).decode().splitlines() == [
        "air,device=air-0001,sensor=scd41,site=bdnc-lab "
        "co2=612,humidity=48.2,temperature=22.41 1795351934120",
        "air,device=air-0001,sensor=pms5003,site=bdnc-lab pm10=7,pm1_0=3,pm2_5=5 1795351927500",
    ]


# ---- whole message: (valid payload, invalid payload, reason) ----------------------------

BIG_OK = json.dumps(message()).encode()
BIG_OK = BIG_OK + b" " * (16384 - len(BIG_OK))

WHOLE: list[tuple[str, Any, Any, str]] = [
    ("size", BIG_OK, BIG_OK + b" ", "too_large"),
    ("utf8", json.dumps(message(note="é"), ensure_ascii=False).encode(),
     json.dumps(message(note="é"), ensure_ascii=False).encode().replace(b"\xc3\xa9", b"\xe9"),
     "not_json"),
    ("bom", json.dumps(message()).encode(), b"\xef\xbb\xbf" + json.dumps(message()).encode(),
     "not_json"),
    ("nan", message(), json.dumps(message()).encode().replace(b"612", b"NaN"), "not_json"),
    ("infinity", message(), json.dumps(message()).encode().replace(b"612", b"Infinity"),
     "not_json"),
    ("neg-infinity", message(), json.dumps(message()).encode().replace(b"612", b"-Infinity"),
     "not_json"),
    ("trailing-comma", message(), json.dumps(message()).encode()[:-1] + b",}", "not_json"),
    ("single-quotes", message(), b"{'v': 1}", "not_json"),
    ("truncated", message(), json.dumps(message()).encode()[:-1], "not_json"),
    ("deep", message(), b"[" * 8000 + b"]" * 8000, "not_json"),
    ("empty", message(), b"", "not_json"),
    ("utf16", message(), json.dumps(message()).encode("utf-16"), "not_json"),
    ("array", message(), [message()], "not_object"),
    ("string", message(), "hello", "not_object"),
    ("null", message(), None, "not_object"),
    ("missing-v", message(), message(v=DROP), "missing_field"),
    ("missing-device", message(), message(device=DROP), "missing_field"),
    ("missing-boot", message(), message(boot=DROP), "missing_field"),
    ("missing-seq", message(), message(seq=DROP), "missing_field"),
    ("missing-samples", message(), message(samples=DROP), "missing_field"),
    ("v-bool", message(v=1), message(v=True), "mistyped_field"),
    ("v-string", message(v=1), message(v="1"), "mistyped_field"),
    ("v-float", message(v=1), message(v=1.0), "mistyped_field"),
    ("boot-string", message(boot=7), message(boot="7"), "mistyped_field"),
    ("boot-float", message(boot=7), message(boot=7.0), "mistyped_field"),
    ("seq-null", message(seq=0), message(seq=None), "mistyped_field"),
    ("device-int", message(), message(device=1), "mistyped_field"),
    ("samples-object", message(), message(samples={"0": sample()}), "mistyped_field"),
    ("version", message(v=1), message(v=2), "bad_version"),
    ("version-0", message(v=1), message(v=0), "bad_version"),
    ("device", message(device=DEVICE), message(device="air-0002"), "device_mismatch"),
    ("device-case", message(device=DEVICE), message(device="AIR-0001"), "device_mismatch"),
    ("boot-max", message(boot=2**31 - 1), message(boot=2**31), "invalid_field"),
    ("boot-min", message(boot=0), message(boot=-1), "invalid_field"),
    ("seq-max", message(seq=2**31 - 1), message(seq=2**31), "invalid_field"),
    ("samples-empty", message(samples=[sample()]), message(samples=[]), "invalid_field"),
    ("samples-max", message(samples=[sample(ts=1795351934.0 + i / 1000, values={"co2": 1})
                                     for i in range(256)]),
     message(samples=[sample(values={"co2": 1})] * 257), "invalid_field"),
    ("sample-not-object", message(), message(samples=[sample(), 5]), "bad_sample"),
    ("sensor-missing", message(), message(samples=[sample(), sample(sensor=DROP)]), "bad_sample"),
    ("sensor-case", message(), message(samples=[sample(sensor="SCD41")]), "bad_sample"),
    ("sensor-int", message(), message(samples=[sample(sensor=41)]), "bad_sample"),
    ("ts-and-age", message(samples=[sample(ts=DROP, age=1)]),
     message(samples=[sample(age=1)]), "bad_sample"),
    ("neither", message(), message(samples=[sample(ts=DROP)]), "bad_sample"),
    ("ts-string", message(), message(samples=[sample(ts="1795351934")]), "bad_sample"),
    ("ts-bool", message(), message(samples=[sample(ts=True)]), "bad_sample"),
    ("ts-null", message(), message(samples=[sample(ts=None)]), "bad_sample"),
    ("age-zero", message(samples=[sample(ts=DROP, age=0)]),
     message(samples=[sample(ts=DROP, age=-0.001)]), "bad_sample"),
    ("age-string", message(samples=[sample(ts=DROP, age=1)]),
     message(samples=[sample(ts=DROP, age="1")]), "bad_sample"),
    ("values-missing", message(), message(samples=[sample(values=DROP)]), "bad_sample"),
    ("values-empty", message(), message(samples=[sample(values={})]), "bad_sample"),
    ("values-array", message(), message(samples=[sample(values=[612])]), "bad_sample"),
    ("values-max", message(samples=[sample(values={f"q{i}": 1 for i in range(32)})]),
     message(samples=[sample(values={f"q{i}": 1 for i in range(33)})]), "bad_sample"),
]


@pytest.mark.parametrize(("valid", "invalid", "reason"),
                         [c[1:] for c in WHOLE], ids=[c[0] for c in WHOLE])
def test_whole_message_rules(valid: Any, invalid: Any, reason: str) -> None:
    ok = run(valid)
    assert ok.accepted is not None
    assert "too_large" not in reasons(ok) and reason not in reasons(ok)
    bad = run(invalid)
    assert bad.accepted is None
    assert reasons(bad) == [reason]
    assert bad.rejections[0].device == DEVICE and bad.rejections[0].topic == TOPIC
    assert reason in REASONS


def test_unknown_keys_are_ignored() -> None:
    out = run(message(extra=1, samples=[sample(note="x")]))
    assert out.accepted is not None and out.rejections == ()


# ---- one value: (valid values, invalid values, reason) ----------------------------------

VALUES: list[tuple[str, dict[str, Any], dict[str, Any], str]] = [
    ("unknown", {"co2": 612}, {"co2_ppm": 612}, "unknown_quantity"),
    ("string", {"co2": 612}, {"co2": "612"}, "mistyped_value"),
    ("bool", {"co2": 1}, {"co2": True}, "mistyped_value"),
    ("null", {"co2": 1}, {"co2": None}, "mistyped_value"),
    ("list", {"co2": 1}, {"co2": [1]}, "mistyped_value"),
    ("huge", {"volume": 1e9}, {"volume": 1e400}, "not_finite"),
    ("neg-huge", {"temperature": -40}, {"temperature": -1e400}, "not_finite"),
    ("co2-high", {"co2": 40000}, {"co2": 40000.001}, "out_of_range"),
    ("co2-low", {"co2": 0}, {"co2": -0.1}, "out_of_range"),
    ("temp-low", {"temperature": -40.0}, {"temperature": -40.01}, "out_of_range"),
    ("temp-high", {"temperature": 85}, {"temperature": 86}, "out_of_range"),
    ("cct-low", {"cct": 1000}, {"cct": 999}, "out_of_range"),
    ("huge-int", {"volume": 10**9}, {"volume": 10**400}, "out_of_range"),
    ("water", {"water_temperature": -10}, {"water_temperature": 100.5}, "out_of_range"),
]


@pytest.mark.parametrize(("valid", "invalid", "reason"),
                         [c[1:] for c in VALUES], ids=[c[0] for c in VALUES])
def test_value_rules(valid: dict[str, Any], invalid: dict[str, Any], reason: str) -> None:
    ok = run(message(samples=[sample(values={**valid, "humidity": 50})]))
    assert ok.rejections == () and ok.accepted is not None
    assert len(ok.accepted.points) >= 1
    raw = json.dumps(message(samples=[sample(values={**invalid, "humidity": 50})]))
    bad = run(raw.replace("Infinity", "1e400").encode())
    assert bad.accepted is not None, "a bad value must not reject the message"
    assert reasons(bad) == [reason]
    kept = [f for p in bad.accepted.points for f in p.fields]
    assert kept == [("humidity", 50.0)]


def test_each_bad_value_reported_once() -> None:
    out = run(message(samples=[sample(values={"co2": -1, "x": 1, "humidity": "h",
                                               "temperature": 20})]))
    assert sorted(reasons(out)) == ["mistyped_value", "out_of_range", "unknown_quantity"]
    assert out.accepted is not None
    assert out.accepted.points[0].fields == (("temperature", 20.0),)


# ---- one sample: time rules ------------------------------------------------------------

TIMES: list[tuple[str, dict[str, Any], dict[str, Any], str]] = [
    ("future", {"ts": NOW + 300}, {"ts": NOW + 300.5}, "ts_in_future"),
    ("future-huge", {"ts": NOW}, {"ts": 1e400}, "ts_in_future"),
    ("future-int", {"ts": int(NOW)}, {"ts": 10**400}, "ts_in_future"),
    ("old", {"ts": MIN_TIME}, {"ts": MIN_TIME - 0.001}, "ts_too_old"),
    ("old-zero", {"ts": MIN_TIME + 1}, {"ts": 0}, "ts_too_old"),
    ("age-old", {"age": NOW - MIN_TIME}, {"age": NOW - MIN_TIME + 1}, "ts_too_old"),
    ("age-huge", {"age": 0}, {"age": 1e400}, "ts_too_old"),
    ("age-huge-int", {"age": 3}, {"age": 10**400}, "ts_too_old"),
]


@pytest.mark.parametrize(("valid", "invalid", "reason"),
                         [c[1:] for c in TIMES], ids=[c[0] for c in TIMES])
def test_time_rules(valid: dict[str, Any], invalid: dict[str, Any], reason: str) -> None:
    def two(when: dict[str, Any]) -> bytes:
        s = sample(**{"ts": DROP, **when})
        other = sample(sensor="bme280", values={"pressure": 1000})
        return json.dumps(message(samples=[s, other])).replace("Infinity", "1e400").encode()

    ok = run(two(valid))
    assert ok.rejections == () and ok.accepted is not None and len(ok.accepted.points) == 2
    bad = run(two(invalid))
    assert bad.accepted is not None, "a bad sample must not reject the message"
    assert reasons(bad) == [reason], "one report per sample, not per value"
    assert [dict(p.tags)["sensor"] for p in bad.accepted.points] == ["bme280"]


def test_all_samples_rejected_still_accepted_for_dedup() -> None:
    out = run(message(samples=[sample(ts=1.0), sample(values={"nope": 1})]))
    assert out.accepted is not None
    assert out.accepted.points == ()
    assert (out.accepted.boot, out.accepted.seq) == (7, 1042)
    assert reasons(out) == ["ts_too_old", "unknown_quantity"]


# ---- store mapping -----------------------------------------------------------------------

def test_one_point_per_sample_and_domain() -> None:
    out = run(message(samples=[sample(values={"co2": 500, "illuminance": 300.5, "volume": 12,
                                               "flow_rate": 1.5})]))
    assert out.accepted is not None
    by = {p.measurement: p for p in out.accepted.points}
    assert set(by) == {"air", "light", "flow"}
    assert by["flow"].fields == (("flow_rate", 1.5), ("volume", 12.0))
    assert all(p.tags == TAGS and p.time_ms == 1795351934120 for p in by.values())
    assert all(type(v) is float for p in by.values() for _, v in p.fields)


@pytest.mark.parametrize(("when", "ms"), [
    ({"ts": 1795351934.1234}, 1795351934123),
    ({"ts": 1795351934.1236}, 1795351934124),
    ({"ts": 1795351934}, 1795351934000),
    ({"age": 0.0004}, 1795351939999 + 1),
    ({"age": 0.0006}, 1795351939999),
    ({"age": 10}, 1795351930000),
])
def test_time_rounded_to_nearest_ms(when: dict[str, Any], ms: int) -> None:
    out = run(message(samples=[sample(**{"ts": DROP, **when})]))
    assert out.accepted is not None
    assert out.accepted.points[0].time_ms == ms


def test_rejection_json_matches_report_model() -> None:
    out = run(message(device="other"))
    raw = out.rejections[0].to_json()
    doc = json.loads(raw)
    assert set(doc) == {"topic", "device", "reason", "detail"}
    assert doc["reason"] == "device_mismatch" and doc["device"] == DEVICE
    report = RejectionReport.model_validate_json(raw)
    assert report.topic == TOPIC
    assert Rejection(TOPIC, None, "bad_topic", "x").to_json().startswith(b'{"topic"')
    assert RejectionReport.model_validate_json(
        Rejection(TOPIC, None, "bad_topic", "x").to_json()).device is None


def test_detail_is_bounded() -> None:
    out = run(message(samples=[sample(values={"x" * 5000: 1})]))
    assert len(out.rejections[0].detail) <= 200


def test_point_type() -> None:
    out = run(message())
    assert out.accepted is not None
    assert isinstance(out.accepted.points[0], Point)


@pytest.mark.parametrize("clock", [float("inf"), float("nan")])
def test_non_finite_clock_is_a_caller_bug(clock: float) -> None:
    with pytest.raises(ValueError):
        validate_telemetry(TOPIC, b"{}", SITE, clock, DEVICE)
    with pytest.raises(ValueError):
        validate_status(TOPIC, b"{}", SITE, clock, DEVICE)
