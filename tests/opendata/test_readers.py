"""Reader query texts (Flux is unit-tested only: no InfluxDB 2 here) and helpers."""

from __future__ import annotations

from collections.abc import Sequence

from gateway.stores.flux_reader import flux_query
from gateway.stores.influxdb1_reader import influxql
from gateway.stores.influxdb2_reader import vm_match
from gateway.stores.reading import Reading, read_chunks, split_metric


def test_flux_query_text() -> None:
    q = flux_query("ll", 1_764_064_800_000, 1_764_068_400_123, ["air", "light"],
                   ["air-1", 'we"ird'])
    assert q == (
        'import "types"\n'
        'from(bucket: "ll")\n'
        "  |> range(start: 2025-11-25T10:00:00.000Z, stop: 2025-11-25T11:00:00.123Z)\n"
        '  |> filter(fn: (r) => r._measurement == "air" or r._measurement == "light")\n'
        '  |> filter(fn: (r) => r.device == "air-1" or r.device == "we\\"ird")\n'
        '  |> filter(fn: (r) => types.isType(v: r._value, type: "float"))\n'
        '  |> keep(columns: ["_time", "_measurement", "_field", "_value", "site", "device", '
        '"sensor"])\n')


def test_influxql_and_vm_selector() -> None:
    assert influxql(1000, 2000, ["air", "flow"], ["a'b"]) == (
        "SELECT * FROM \"air\",\"flow\" WHERE time >= 1000ms AND time < 2000ms "
        "AND (device = 'a\\'b')")
    assert vm_match(["air"], []) == '{__name__=~"(air)_.+"}'
    assert vm_match(["air", "light"], ["x", "y"]) == \
        '{__name__=~"(air|light)_.+",device=~"x|y"}'


def test_split_metric_prefers_the_longest_domain() -> None:
    assert split_metric("air_pm2_5", ["air", "light"]) == ("air", "pm2_5")
    assert split_metric("air_quality_no2", ["air", "air_quality"]) == ("air_quality", "no2")
    assert split_metric("device_rssi", ["air"]) is None


def test_read_chunks_are_aligned_and_sorted() -> None:
    calls: list[tuple[int, int]] = []

    class R:
        def check(self) -> None: ...

        def close(self) -> None: ...

        def window(self, a: int, b: int, d: Sequence[str], v: Sequence[str],
                   sites: Sequence[str] = ()) -> list[Reading]:
            calls.append((a, b))
            return [Reading(b - 1, "s", "z", "", "air", "co2", 1.0),
                    Reading(a, "s", "a", "", "air", "co2", 2.0)]

    out = list(read_chunks(R(), 150, 420, 100, ["air"]))
    assert calls == [(150, 200), (200, 300), (300, 400), (400, 420)]
    assert [rows[0].time_ms for _, rows in out] == [150, 200, 300, 400]


def test_string_fields_are_never_readings() -> None:
    """The device point's fw (a string field): InfluxQL answers it as a string column,
    VictoriaMetrics as the number it parsed out of it; neither becomes a reading."""
    from gateway.stores.influxdb1_reader import _rows
    from gateway.stores.influxdb2_reader import VictoriaMetricsReader

    out: list[Reading] = []
    _rows({"name": "device", "columns": ["time", "device", "fw", "online", "site"],
           "values": [[5, "air-1", "0.2.0", 1.0, "lab"], [6, "air-1", "1.5", None, "lab"]]},
          out)
    assert out == [Reading(5, "lab", "air-1", "", "device", "online", 1.0)]
    vm: list[Reading] = []
    for name in ("device_fw", "device_online", "device_info_v", "device_board"):
        VictoriaMetricsReader._series({"metric": {"__name__": name, "device": "air-1",
                                                  "site": "lab"},
                                       "timestamps": [5], "values": [1.5]}, 0, 10,
                                      ["device"], vm)
    assert [r.quantity for r in vm] == ["online"]
