"""The ``gateway`` health point and its ``gateway_info`` companion (wire contract)."""

from __future__ import annotations

from gateway.ops.store_health import GatewaySample, gateway_points
from protocols import encode_lines, parse_line


def sample(**kw: object) -> GatewaySample:
    base: dict[str, object] = dict(
        site="lab", gateway="gw1", at=1795351934.1234, up=True, broker_connected=True,
        buffer_points=120, buffer_oldest_s=42.5, disk_free_bytes=10_000_000,
        devices_online=7, uptime_s=3600.25, interval_s=30.0, version="0.3.0")
    base.update(kw)
    return GatewaySample(**base)  # type: ignore[arg-type]


def test_gateway_point_has_the_contract_fields_tags_and_time() -> None:
    point, info = gateway_points(sample())
    assert point.measurement == "gateway"
    assert point.tags == (("gateway", "gw1"), ("site", "lab"))
    assert dict(point.fields) == {
        "up": 1.0, "broker_connected": 1.0, "buffer_points": 120.0, "buffer_oldest_s": 42.5,
        "disk_free_bytes": 1e7, "devices_online": 7.0, "uptime_s": 3600.25,
        "interval_s": 30.0, "version": "0.3.0"}
    assert point.time_ms == 1795351934123
    assert info.measurement == "gateway_info" and info.time_ms == point.time_ms
    assert dict(info.tags) == {"site": "lab", "gateway": "gw1", "version": "0.3.0"}
    assert info.fields == (("v", 1.0),)
    body = encode_lines([point, info]).decode()
    assert [parse_line(line) for line in body.split("\n")] == [point, info]


def test_shutdown_point_and_empty_buffer() -> None:
    point, _ = gateway_points(sample(up=False, broker_connected=False, buffer_points=0,
                                     buffer_oldest_s=12.0, version="1\n2"))
    f = dict(point.fields)
    assert f["up"] == 0.0 and f["broker_connected"] == 0.0
    assert f["buffer_oldest_s"] == 0.0  # 0.0 when empty, whatever the age said
    assert f["version"] == "12"
