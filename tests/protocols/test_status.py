"""Device status messages: birth, last will, typed fields, the ``device`` health point."""

from __future__ import annotations

import json
from typing import Any

import pytest

from protocols import Status, encode_point, parse_line, validate_status

TOPIC = "livinglab/v1/bdnc-lab/air-0001/status"
NOW = 1795351940.25


def run(doc: Any) -> Any:
    raw = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    return validate_status(TOPIC, raw, "bdnc-lab", NOW, "air-0001")


def test_contract_example_maps_to_device_point() -> None:
    doc = {"state": "online", "fw": "1.0.0", "board": "pico_w", "boot": 7, "ip": "10.0.0.12",
           "rssi": -61, "heap_free": 123456, "uptime": 3600}
    record, rejection = run(doc)
    assert rejection is None
    assert record.state == "online" and record.device == "air-0001"
    assert record.fields["fw"] == "1.0.0" and record.fields["rssi"] == -61.0
    p = record.point
    assert p.measurement == "device"
    assert p.tags == (("device", "air-0001"), ("site", "bdnc-lab"))
    assert p.fields == (("board", "pico_w"), ("boot", 7.0), ("fw", "1.0.0"),
                        ("heap_free", 123456.0), ("online", 1.0), ("rssi", -61.0),
                        ("uptime", 3600.0))
    assert p.time_ms == 1795351940250
    Status.model_validate(doc)


def test_last_will_is_valid() -> None:
    record, rejection = run(b'{"state":"offline"}')
    assert rejection is None
    assert record.state == "offline"
    assert record.point.fields == (("online", 0.0),)


def test_empty_payload_is_a_cleared_retained_message() -> None:
    assert run(b"") == (None, None)


@pytest.mark.parametrize(("doc", "reason"), [
    (b"{", "not_json"),
    (b'{"state":"online","rssi":NaN}', "not_json"),
    (b"[]", "not_object"),
    (b'{"state":"online"}' + b" " * 16384, "too_large"),
    ({"fw": "1"}, "missing_field"),
    ({"state": True}, "mistyped_field"),
    ({"state": "sleeping"}, "invalid_field"),
    ({"state": "online", "fw": 1}, "mistyped_field"),
    ({"state": "online", "fw": None}, "mistyped_field"),
    ({"state": "online", "boot": "7"}, "mistyped_field"),
    ({"state": "online", "boot": -1}, "invalid_field"),
    ({"state": "online", "heap_free": 1.5}, "mistyped_field"),
    ({"state": "online", "interval_s": 0}, "invalid_field"),
    ({"state": "online", "interval_s": 86401}, "invalid_field"),
    ({"state": "online", "interval_s": 30.0}, "mistyped_field"),
    ({"state": "online", "dropped": -1}, "invalid_field"),
    ({"state": "online", "sensor_errors": "2"}, "mistyped_field"),
    ({"state": "online", "rssi": "-61"}, "mistyped_field"),
    ({"state": "online", "rssi": -201}, "invalid_field"),
    ({"state": "online", "uptime": -1}, "invalid_field"),
    ({"state": "online", "uptime": True}, "mistyped_field"),
    ({"state": "online", "fw": "1.0\n"}, "invalid_field"),
    ({"state": "online", "fw": "1\u0000"}, "invalid_field"),
    ({"state": "online", "update": "0.2.0"}, "mistyped_field"),
    ({"state": "online", "update": None}, "mistyped_field"),
    ({"state": "online", "update": {"state": "staged"}}, "missing_field"),
    ({"state": "online", "update": {"version": "0.2.0"}}, "missing_field"),
    ({"state": "online", "update": {"version": 2, "state": "staged"}}, "mistyped_field"),
    ({"state": "online", "update": {"version": "2", "state": "done"}}, "invalid_field"),
    ({"state": "online", "update": {"version": "2", "state": "refused", "reason": None}},
     "mistyped_field"),
])
def test_invalid_status(doc: Any, reason: str) -> None:
    record, rejection = run(doc)
    assert record is None
    assert rejection is not None and rejection.reason == reason
    assert rejection.device == "air-0001" and rejection.topic == TOPIC


def test_unknown_keys_ignored() -> None:
    record, rejection = run({"state": "online", "future_field": [1, 2]})
    assert rejection is None and record is not None
    assert record.fields == {}


def test_fw_is_a_string_field_of_the_device_point() -> None:
    record, _ = run({"state": "online", "fw": 'v"1\\2 <b>'})
    assert dict(record.point.fields)["fw"] == 'v"1\\2 <b>'
    assert encode_point(record.point).startswith(
        'device,device=air-0001,site=bdnc-lab fw="v\\"1\\\\2 <b>",online=1 ')
    assert parse_line(encode_point(record.point)) == record.point


@pytest.mark.parametrize("update", [
    {"version": "0.3.0", "state": "refused", "reason": "ll/app.py: sha256 mismatch"},
    {"version": "0.2.0", "state": "downloading"},
    {"version": "?", "state": "rolled_back", "reason": "not confirmed after 3 boots (x)"},
])
def test_update_object_kept_in_the_fields_not_the_point(update: dict[str, str]) -> None:
    doc = {"state": "online", "fw": "0.2.0", "update": {**update, "extra": [1]}}
    record, rejection = run(doc)
    assert rejection is None
    assert record.fields["update"] == update
    assert "update" not in dict(record.point.fields)
    assert Status.model_validate(doc).update is not None


def test_third_turn_fields_reach_the_device_point() -> None:
    """wire contract, "Device points, more fields": interval_s, boot, dropped,
    sensor_errors as floats; board and update_* as control-free string fields."""
    doc = {"state": "online", "fw": "1.1.0", "board": "esp32", "boot": 3, "interval_s": 30,
           "dropped": 2, "sensor_errors": 1,
           "update": {"version": "1.2.0", "state": "refused", "reason": "bad\u0085 sig"}}
    record, rejection = run(doc)
    assert rejection is None
    assert dict(record.point.fields) == {
        "board": "esp32", "boot": 3.0, "dropped": 2.0, "fw": "1.1.0", "interval_s": 30.0,
        "online": 1.0, "sensor_errors": 1.0, "update_reason": "bad sig",
        "update_state": "refused", "update_version": "1.2.0"}
    assert record.fields["update"] == {"version": "1.2.0", "state": "refused",
                                       "reason": "bad\u0085 sig"}  # C1: removed when stored
    Status.model_validate(doc)
    assert parse_line(encode_point(record.point)) == record.point
