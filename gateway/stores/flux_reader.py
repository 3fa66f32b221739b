"""The reader of ``influxdb2`` stores of the InfluxDB flavour (2.x, Flux), for the centre
(:class:`~gateway.stores.centre.CentreReader`) and the exports (``window``).

Flux answers one table per series, so ``last()`` is each series' newest sample
with its time (the newest point is then rebuilt as for the other stores, see
``centre_rows``), and one query covers a measurement and its ``_info``
companion. Every call is one query (plus one per ``chunk_s`` window for
``readings``). Records come from ``influxdb-client``'s streaming API; the text
of every query and the assembly of the answers are unit-tested, but no InfluxDB
2 runs here (Debian ships 1.x), so this reader has not met a real server.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from protocols.config import StoreSection

from .centre import (
    DeliveryRow,
    RejectionRow,
    SeriesPoint,
    is_reading_measurement,
)
from .centre_rows import (
    RESERVED_DOMAINS,
    STRING_FIELDS,
    PointsFromPrimitives,
    Sample,
    check_ids,
    delivery_row,
    latest_of,
    latest_strings,
    points_of,
    reading_order,
    rejection_row,
)
from .reading import Reading, StoreUnreadable

__all__ = ["FluxReader", "flux_query"]

#: a record as a plain dict: Flux's columns, ``_time`` in Unix ms
Record = dict[str, Any]
_END = 8_000_000_000_000  # ms, year 2223
_SYSTEM = frozenset({"result", "table", "_start", "_stop", "_time", "_value", "_field",
                     "_measurement", "site", "device", "gateway", "v"})


def _rfc3339(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.") \
        + f"{ms % 1000:03d}Z"


def _flux_str(s: str) -> str:
    return json.dumps(s)  # a Flux string literal: double quotes, backslash escapes


def flux_query(bucket: str, since_ms: int, until_ms: int, domains: Sequence[str],
               devices: Sequence[str], sites: Sequence[str] = ()) -> str:
    """The Flux query of one window (range stop is exclusive, like the other readers)."""
    ms = " or ".join(f"r._measurement == {_flux_str(d)}" for d in domains)
    q = (f"from(bucket: {_flux_str(bucket)})\n"
         f"  |> range(start: {_rfc3339(since_ms)}, stop: {_rfc3339(until_ms)})\n"
         f"  |> filter(fn: (r) => {ms})\n")
    if devices:
        ds = " or ".join(f"r.device == {_flux_str(d)}" for d in devices)
        q += f"  |> filter(fn: (r) => {ds})\n"
    if sites:
        ss = " or ".join(f"r.site == {_flux_str(s)}" for s in sites)
        q += f"  |> filter(fn: (r) => {ss})\n"
    q += ('  |> filter(fn: (r) => types.isType(v: r._value, type: "float"))\n'
          '  |> keep(columns: ["_time", "_measurement", "_field", "_value", "site", "device", '
          '"sensor"])\n')
    return 'import "types"\n' + q


def _any(column: str, values: Sequence[str]) -> str:
    """`` and (r.c == "a" or ...)`` for checked ids; nothing when empty."""
    if not values:
        return ""
    return " and (" + " or ".join(f"r.{column} == {_flux_str(v)}"
                                  for v in check_ids(values, column)) + ")"


def centre_query(bucket: str, start: str, stop: str, where: str, tail: str = "") -> str:
    """``from |> range |> filter`` with Flux's range bounds given as Flux expressions."""
    return (f'import "types"\nimport "strings"\nfrom(bucket: {_flux_str(bucket)})\n'
            f"  |> range(start: {start}, stop: {stop})\n"
            f"  |> filter(fn: (r) => {where})\n{tail}")


_READINGS = ("not contains(value: r._measurement, set: "
             + json.dumps(list(RESERVED_DOMAINS)) + ")"
             ' and not strings.hasSuffix(v: r._measurement, suffix: "_info")'
             ' and types.isType(v: r._value, type: "float")')


class FluxReader(PointsFromPrimitives):
    """Both readers of an InfluxDB 2 bucket; blocking, read-only. ``query`` (tests): a
    function from Flux text to records, instead of the client."""

    def __init__(self, cfg: StoreSection, lookback_s: int = 30 * 86400, chunk_s: int = 3600,
                 query: Callable[[str], Iterator[Record]] | None = None) -> None:
        self._cfg = cfg
        self._bucket = cfg.bucket
        self._lookback_ms = lookback_s * 1000
        self._chunk_ms = chunk_s * 1000
        self._urls = list(cfg.reader_urls)
        self._clients: dict[str, Any] = {}
        self._first = 0
        self._query_fn = query
        self._queries = 0
        self._what = f"InfluxDB 2 bucket '{cfg.bucket}'"

    # -- plumbing ---------------------------------------------------------------------
    def _client(self, url: str) -> Any:
        if url not in self._clients:
            from influxdb_client.client.influxdb_client import InfluxDBClient

            self._clients[url] = InfluxDBClient(url=url, token=self._cfg.token,
                                                org=self._cfg.org, retries=False,
                                                timeout=int(self._cfg.timeout_s * 6000))
        return self._clients[url]

    def _records(self, flux: str) -> list[Record]:
        """Every record of ``flux``, ``read_urls`` in order (the next on a connection error)."""
        self._queries += 1
        if self._query_fn is not None:
            return list(self._query_fn(flux))
        from influxdb_client.rest import ApiException

        errors = []
        for i in range(len(self._urls)):
            at = (self._first + i) % len(self._urls)
            url = self._urls[at]
            try:
                api = self._client(url).query_api()
                out = []
                for rec in api.query_stream(flux, org=self._cfg.org):
                    values = dict(rec.values)
                    values["_time"] = int(rec.get_time().timestamp() * 1000 + 0.5)
                    out.append(values)
            except ApiException as exc:
                if int(exc.status or 0) < 500:
                    raise StoreUnreadable(f"{self._what} at {url} answered HTTP {exc.status}: "
                                          f"{exc.reason} (check [store] token, org and "
                                          "bucket)") from None
                errors.append(f"{url}: HTTP {exc.status}")
                continue
            except Exception as exc:  # noqa: BLE001 - urllib3 and socket errors
                errors.append(f"{url}: {exc}")
                continue
            self._first = at
            return out
        raise StoreUnreadable(f"{self._what} is unreachable at every read URL "
                              f"({'; '.join(errors)}): start the store or check [store] url "
                              "and read_urls")

    def _now_ms(self) -> int:
        return int(time.time() * 1000)

    def _range_last(self) -> tuple[str, str]:
        now = self._now_ms()
        return _rfc3339(now - self._lookback_ms), _rfc3339(now + 1)

    @staticmethod
    def _samples(records: list[Record], measurement: str, key: str
                 ) -> tuple[list[Sample], list[tuple[tuple[str, str], int, dict[str, str]]]]:
        nums: list[Sample] = []
        infos: list[tuple[tuple[str, str], int, dict[str, str]]] = []
        strings = STRING_FIELDS.get(measurement, frozenset())
        for r in records:
            site, k, t = str(r.get("site") or ""), str(r.get(key) or ""), int(r["_time"])
            if r.get("_measurement") == measurement + "_info":
                infos.append(((site, k), t, {c: str(v) for c, v in r.items()
                                             if c not in _SYSTEM and v not in (None, "")}))
            elif r.get("_field") not in strings and isinstance(r.get("_value"), (int, float)):
                nums.append((site, k, t, str(r["_field"]), float(r["_value"])))
        return nums, infos

    def _where(self, measurement: str, sites: Sequence[str]) -> str:
        return (f"(r._measurement == {_flux_str(measurement)} or r._measurement == "
                f"{_flux_str(measurement + '_info')}){_any('site', sites)}")

    def _latest(self, measurement: str, key: str, sites: Sequence[str]
                ) -> list[tuple[str, str, int, dict[str, float], dict[str, str]]]:
        start, stop = self._range_last()
        recs = self._records(centre_query(self._bucket, start, stop,
                                          self._where(measurement, sites), "  |> last()\n"))
        nums, infos = self._samples(recs, measurement, key)
        strings = latest_strings(infos)
        return [(s, k, t, f, strings.get((s, k), {}))
                for (s, k), (t, f) in sorted(latest_of(nums).items())]

    def _history(self, measurement: str, key: str, sites: Sequence[str], since_ms: int,
                 until_ms: int) -> list[tuple[str, str, int, dict[str, float], dict[str, str]]]:
        recs = self._records(centre_query(self._bucket, _rfc3339(since_ms), _rfc3339(until_ms),
                                          self._where(measurement, sites)))
        nums, infos = self._samples(recs, measurement, key)
        at = {(k[0], k[1], t): s for k, t, s in infos}
        return [(s, k, t, f, at.get((s, k, t), {}))
                for (s, k, t), f in sorted(points_of(nums).items(),
                                           key=lambda kv: (kv[0][2], kv[0][:2]))]

    # -- the CentreReader protocol ------------------------------------------------------
    def check(self) -> None:
        self._records(f"buckets() |> filter(fn: (r) => r.name == {_flux_str(self._bucket)})")

    def sites(self) -> list[str]:
        start = _rfc3339(self._now_ms() - self._lookback_ms)
        recs = self._records(f'import "influxdata/influxdb/schema"\nschema.tagValues(bucket: '
                             f'{_flux_str(self._bucket)}, tag: "site", start: {start})')
        return sorted({str(r["_value"]) for r in recs if r.get("_value")})

    def _last_readings(self, sites: Sequence[str], devices: Sequence[str],
                       since_ms: int | None = None) -> list[Reading]:
        start, stop = self._range_last()
        if since_ms is not None:
            start = _rfc3339(since_ms)
        recs = self._records(centre_query(
            self._bucket, start, stop,
            _READINGS + _any("site", sites) + _any("device", devices), "  |> last()\n"))
        return [Reading(int(r["_time"]), str(r.get("site") or ""), str(r.get("device") or ""),
                        str(r.get("sensor") or ""), str(r["_measurement"]), str(r["_field"]),
                        float(r["_value"])) for r in recs
                if is_reading_measurement(str(r.get("_measurement", "")))]

    def latest_reading_times(self, sites: Sequence[str] = ()) -> dict[tuple[str, str], int]:
        out: dict[tuple[str, str], int] = {}
        for r in self._last_readings(sites, ()):
            key = (r.site, r.device)
            out[key] = max(out.get(key, 0), r.time_ms)
        return out

    def latest_values(self, sites: Sequence[str] = (), devices: Sequence[str] = (),
                      since_ms: int | None = None) -> list[Reading]:
        out = self._last_readings(sites, devices, since_ms)
        out.sort(key=lambda r: (r.site, r.device, r.sensor, r.domain, r.quantity))
        return out

    def readings(self, since_ms: int, until_ms: int, sites: Sequence[str] = (),
                 devices: Sequence[str] = (), domains: Sequence[str] = (),
                 quantities: Sequence[str] = ()) -> Iterator[Reading]:
        where = (_READINGS + _any("site", sites) + _any("device", devices)
                 + _any("_measurement", domains) + _any("_field", quantities))
        start = since_ms
        while start < until_ms:
            end = min(until_ms, (start // self._chunk_ms + 1) * self._chunk_ms)
            recs = self._records(centre_query(self._bucket, _rfc3339(start), _rfc3339(end),
                                              where))
            rows = [Reading(int(r["_time"]), str(r.get("site") or ""),
                            str(r.get("device") or ""), str(r.get("sensor") or ""),
                            str(r["_measurement"]), str(r["_field"]), float(r["_value"]))
                    for r in recs]
            rows.sort(key=reading_order)
            yield from rows
            start = end

    def series(self, site: str, device: str, domain: str, quantity: str,
               since_ms: int, until_ms: int, step_ms: int) -> list[SeriesPoint]:
        check_ids([site, device, domain, quantity])
        where = (f"r._measurement == {_flux_str(domain)} and r._field == {_flux_str(quantity)}"
                 f" and r.site == {_flux_str(site)} and r.device == {_flux_str(device)}")
        tail = ('  |> group(columns: ["sensor"])\n'
                f"  |> aggregateWindow(every: {max(int(step_ms), 1)}ms, fn: mean, "
                'createEmpty: false, timeSrc: "_start")\n')
        recs = self._records(centre_query(self._bucket, _rfc3339(since_ms), _rfc3339(until_ms),
                                          where, tail))
        out = [SeriesPoint(str(r.get("sensor") or ""), int(r["_time"]), float(r["_value"]))
               for r in recs if r.get("_value") is not None]
        out.sort(key=lambda p: (p.sensor, p.time_ms))
        return out

    def _hourly(self, measurement: str, since_ms: int, until_ms: int,
                sites: Sequence[str]) -> list[Record]:
        return self._records(centre_query(
            self._bucket, _rfc3339(since_ms), _rfc3339(until_ms),
            f"r._measurement == {_flux_str(measurement)}{_any('site', sites)}"))

    def delivery(self, since_ms: int, until_ms: int,
                 sites: Sequence[str] = ()) -> list[DeliveryRow]:
        nums, _ = self._samples(self._hourly("delivery", since_ms, until_ms, sites),
                                "delivery", "device")
        return [delivery_row(s, d, t, f)
                for (s, d, t), f in sorted(points_of(nums).items(),
                                           key=lambda kv: (kv[0][2], kv[0][:2]))]

    def rejections(self, since_ms: int, until_ms: int,
                   sites: Sequence[str] = ()) -> list[RejectionRow]:
        rows = [rejection_row(str(r.get("site") or ""), str(r.get("device") or ""),
                              str(r.get("reason") or ""), int(r["_time"]),
                              {"count": float(r["_value"])})
                for r in self._hourly("rejections", since_ms, until_ms, sites)
                if r.get("_field") == "count"]
        rows.sort(key=lambda r: (r.hour_ms, r.site, r.device, r.reason))
        return rows

    def queries(self) -> int:
        return self._queries

    # -- the export's window (StoreReader) ------------------------------------------------
    def window(self, since_ms: int, until_ms: int, domains: Sequence[str],
               devices: Sequence[str], sites: Sequence[str] = ()) -> list[Reading]:
        recs = self._records(flux_query(self._bucket, since_ms, until_ms, domains, devices,
                                        sites))
        return [Reading(int(r["_time"]), str(r.get("site") or ""), str(r.get("device") or ""),
                        str(r.get("sensor") or ""), str(r["_measurement"]), str(r["_field"]),
                        float(r["_value"])) for r in recs]

    def close(self) -> None:
        for c in self._clients.values():
            c.close()
        self._clients.clear()
