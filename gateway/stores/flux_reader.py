"""The reader of ``influxdb2`` stores of the InfluxDB flavour (2.x, Flux), through
``influxdb-client``'s streaming query API.

The exports' ``window``, and the two questions a one-site console asks (the
latest values, a downsampled series); no InfluxDB 2 runs here to test the rest of
the centre's questions against (Debian ships 1.x), and untested Flux is not
offered: those raise StoreUnreadable naming the alternatives.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, NoReturn

from protocols.config import StoreSection

from .centre import SeriesPoint
from .reading import Reading, StoreUnreadable

__all__ = ["FluxReader", "flux_query"]


def _rfc3339(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.") \
        + f"{ms % 1000:03d}Z"


def _flux_str(s: str) -> str:
    return json.dumps(s)  # a Flux string literal: double quotes, backslash escapes


def flux_query(bucket: str, since_ms: int, until_ms: int, domains: Sequence[str],
               devices: Sequence[str]) -> str:
    """The Flux query of one window (range stop is exclusive, like the other readers)."""
    ms = " or ".join(f"r._measurement == {_flux_str(d)}" for d in domains)
    q = (f"from(bucket: {_flux_str(bucket)})\n"
         f"  |> range(start: {_rfc3339(since_ms)}, stop: {_rfc3339(until_ms)})\n"
         f"  |> filter(fn: (r) => {ms})\n")
    if devices:
        ds = " or ".join(f"r.device == {_flux_str(d)}" for d in devices)
        q += f"  |> filter(fn: (r) => {ds})\n"
    q += ('  |> filter(fn: (r) => types.isType(v: r._value, type: "float"))\n'
          '  |> keep(columns: ["_time", "_measurement", "_field", "_value", "site", "device", '
          '"sensor"])\n')
    return 'import "types"\n' + q


class FluxReader:
    """InfluxDB 2.x: the exports' windows; the centre's questions are not offered yet."""

    def __init__(self, cfg: StoreSection, lookback_s: int = 30 * 86400,
                 chunk_s: int = 3600) -> None:
        from influxdb_client.client.influxdb_client import InfluxDBClient

        self._cfg = cfg
        self._client: Any = InfluxDBClient(url=cfg.reader_urls[0], token=cfg.token,
                                           org=cfg.org, timeout=int(cfg.timeout_s * 6000))
        self._what = f"InfluxDB 2 bucket '{cfg.bucket}' at {cfg.reader_urls[0]}"
        self._queries = 0
        self._lookback_s = int(lookback_s)

    def check(self) -> None:
        self._queries += 1
        try:
            ok = self._client.ping()
        except Exception as exc:  # noqa: BLE001 - the client raises many kinds
            raise StoreUnreadable(f"{self._what}: {exc} (start it or check [store] url)") \
                from None
        if not ok:
            raise StoreUnreadable(f"{self._what} does not answer /ping "
                                  "(start it or check [store] url)")

    def window(self, since_ms: int, until_ms: int, domains: Sequence[str],
               devices: Sequence[str]) -> list[Reading]:
        query = flux_query(self._cfg.bucket, since_ms, until_ms, domains, devices)
        out: list[Reading] = []
        self._queries += 1
        try:
            for rec in self._client.query_api().query_stream(query, org=self._cfg.org):
                v = rec.values
                t = int(rec.get_time().timestamp() * 1000 + 0.5)
                out.append(Reading(t, v.get("site") or "", v.get("device") or "",
                                   v.get("sensor") or "", rec.get_measurement(),
                                   rec.get_field(), float(rec.get_value())))
        except Exception as exc:  # noqa: BLE001 - translated at the boundary
            raise StoreUnreadable(f"{self._what}: {exc} (check [store] url, token, org, "
                                  "bucket)") from None
        return out

    def queries(self) -> int:
        return self._queries

    def unsupported(self, *_: object, **__: object) -> NoReturn:
        raise StoreUnreadable(f"{self._what}: the centre's questions (city console, alerts, "
                              "SensorThings, reports across sites) are not offered over Flux "
                              "yet; use VictoriaMetrics or InfluxDB 1.x as the shared store")

    sites = gateways = devices = device_points = stations = station_history = unsupported
    latest_reading_times = readings = unsupported
    delivery = rejections = unsupported

    # The two questions the gateway-scope console asked of InfluxDB 2.x before the
    # readers were one stack (tested against a stand-in client: no influxd 2 here).
    def _records(self, flux: str) -> list[Any]:
        self._queries += 1
        try:
            tables = self._client.query_api().query(flux, org=self._cfg.org)
        except Exception as exc:  # noqa: BLE001 - translated at the boundary
            raise StoreUnreadable(f"{self._what}: {exc} (check [store] url, token, org, "
                                  "bucket)") from None
        return [rec for table in tables for rec in table.records]

    def _from(self, start: str, stop: str, sites: Sequence[str],
              devices: Sequence[str]) -> str:
        q = (f"from(bucket: {_flux_str(self._cfg.bucket)}) |> range(start: {start}"
             + (f", stop: {stop}" if stop else "") + ")")
        for tag, values in (("site", sites), ("device", devices)):
            if values:
                q += " |> filter(fn: (r) => " + " or ".join(
                    f"r.{tag} == {_flux_str(v)}" for v in values) + ")"
        return q + ' |> filter(fn: (r) => types.isType(v: r._value, type: "float"))'

    def latest_values(self, sites: Sequence[str] = (),
                      devices: Sequence[str] = ()) -> list[Reading]:
        """The newest value per (site, device, sensor, measurement, field), looking back
        ``lookback_s``; the reserved measurements left out."""
        flux = ('import "types"\n' + self._from(f"-{self._lookback_s}s", "", sites, devices)
                + ' |> filter(fn: (r) => r._measurement != "device" and r._measurement != '
                '"delivery" and r._measurement != "gateway" and r._measurement != "station" '
                'and r._measurement != "rejections" and r._measurement !~ /_info$/)'
                + ' |> group(columns: ["site", "device", "sensor", "_measurement", "_field"])'
                + " |> last()")
        out = [Reading(int(rec.get_time().timestamp() * 1000 + 0.5),
                       str(rec.values.get("site") or ""), str(rec.values.get("device") or ""),
                       str(rec.values.get("sensor") or ""), str(rec.get_measurement()),
                       str(rec.get_field()), float(rec.get_value()))
               for rec in self._records(flux)]
        return sorted(out, key=lambda r: (r.site, r.device, r.sensor, r.domain, r.quantity))

    def series(self, site: str, device: str, domain: str, quantity: str,
               since_ms: int, until_ms: int, step_ms: int) -> list[SeriesPoint]:
        """The mean per ``step_ms`` window, by sensor, computed by InfluxDB."""
        flux = ('import "types"\n'
                + self._from(_rfc3339(since_ms), _rfc3339(until_ms), (site,), (device,))
                + f" |> filter(fn: (r) => r._measurement == {_flux_str(domain)} and "
                f"r._field == {_flux_str(quantity)})"
                + ' |> group(columns: ["sensor"])'
                + f" |> aggregateWindow(every: {max(int(step_ms), 1)}ms, fn: mean, "
                'createEmpty: false, timeSrc: "_start")')
        out = [SeriesPoint(str(rec.values.get("sensor") or ""),
                           int(rec.get_time().timestamp() * 1000 + 0.5), float(rec.get_value()))
               for rec in self._records(flux)]
        return sorted(out, key=lambda p: (p.sensor, p.time_ms))

    def close(self) -> None:
        self._client.close()
