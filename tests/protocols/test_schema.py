"""The committed JSON Schemas are current, and describe the contract's examples."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from protocols import DeviceConfig, GatewayStatus, Rejection
from protocols.schema import SCHEMA_DIR, generate_schemas, load_schema, main, render

EXAMPLES: dict[str, Any] = {
    "telemetry": {"v": 1, "device": "air-0001", "boot": 7, "seq": 1042, "samples": [
        {"sensor": "scd41", "ts": 1795351934.120,
         "values": {"co2": 612, "temperature": 22.41, "humidity": 48.2}},
        {"sensor": "pms5003", "age": 12.5, "values": {"pm1_0": 3, "pm2_5": 5, "pm10": 7}}]},
    "status": {"state": "online", "fw": "1.0.0", "board": "pico_w", "boot": 7,
               "ip": "10.0.0.12", "rssi": -61, "heap_free": 123456, "uptime": 3600},
    "device-config": {"interval_s": 30},
    "gateway-status": {"state": "online", "gateway": "gw-01", "site": "bdnc-lab",
                       "version": "0.1.0", "started_at": 1795351000.0, "ts": 1795351940.5,
                       "received": 10, "accepted": 8, "rejected": 2, "duplicates": 1,
                       "forwarded": 12, "buffer_depth": 0},
    "rejection-report": json.loads(Rejection(
        "livinglab/v1/bdnc-lab/air-0001/telemetry", "air-0001", "out_of_range",
        "samples[0] (scd41) 'co2'=-1 outside 0..40000 ppm").to_json()),
}

COUNTER_EXAMPLES: dict[str, Any] = {
    "telemetry": {**EXAMPLES["telemetry"], "samples": [
        {"sensor": "scd41", "ts": 1.0, "age": 1.0, "values": {"co2": 1}}]},
    "status": {"state": "asleep"},
    "device-config": {"interval_s": 0},
    "gateway-status": {"state": "online", "gateway": "gw-01", "site": "s", "bogus": 1},
    "rejection-report": {"topic": "t", "device": None, "reason": "nope", "detail": ""},
}


def test_committed_schemas_are_current() -> None:
    generated = generate_schemas()
    committed = {p.stem for p in SCHEMA_DIR.glob("*.json")}
    assert committed == set(generated), "run: python -m protocols.schema"
    for name, schema in generated.items():
        text = (SCHEMA_DIR / f"{name}.json").read_text(encoding="utf-8")
        assert text == render(schema), f"{name}.json is stale; run: python -m protocols.schema"


def test_main_writes_schemas(tmp_path: Path) -> None:
    assert main([str(tmp_path)]) == 0
    assert {p.name for p in tmp_path.iterdir()} == {f"{n}.json" for n in generate_schemas()}


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_examples_valid_counter_examples_not(name: str) -> None:
    schema = generate_schemas()[name]
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    validator.validate(EXAMPLES[name])
    assert not validator.is_valid(COUNTER_EXAMPLES[name])


def test_schema_is_stricter_than_gateway_on_values() -> None:
    """Firmware is held to known, in-range quantities; the gateway only drops such values."""
    validator = jsonschema.Draft202012Validator(generate_schemas()["telemetry"])
    doc = {**EXAMPLES["telemetry"], "samples": [
        {"sensor": "scd41", "ts": 1795351934.1, "values": {"co2": 40001}}]}
    assert not validator.is_valid(doc)


def test_device_config_ignores_unknown_keys_and_checks_calibration() -> None:
    cfg = DeviceConfig.model_validate({"interval_s": 30, "future": True,
                                       "calibration": {"co2": -12, "temperature": 0.5}})
    assert cfg.interval_s == 30 and cfg.calibration == {"co2": -12, "temperature": 0.5}
    with pytest.raises(ValueError):
        DeviceConfig.model_validate({"interval_s": 30, "calibration": {"nope": 1}})
    with pytest.raises(ValueError):
        DeviceConfig.model_validate({"interval_s": 86401})
    with pytest.raises(ValueError):
        DeviceConfig.model_validate({"interval_s": "30"})


def test_gateway_status_last_will_and_round_trip() -> None:
    will = GatewayStatus(state="offline", gateway="gw-01", site="bdnc-lab")
    raw = will.model_dump_json(exclude_none=True)
    assert json.loads(raw) == {"state": "offline", "gateway": "gw-01", "site": "bdnc-lab"}
    full = GatewayStatus.model_validate(EXAMPLES["gateway-status"])
    assert GatewayStatus.model_validate_json(full.model_dump_json()) == full


def test_load_schema() -> None:
    assert load_schema("telemetry") == generate_schemas()["telemetry"]
    with pytest.raises(KeyError):
        load_schema("nope")


def test_gateway_payloads_refuse_non_finite() -> None:
    with pytest.raises(ValueError):
        GatewayStatus(state="online", gateway="g", site="s", started_at=float("inf"))
