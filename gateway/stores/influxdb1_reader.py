"""The reader of InfluxDB 1.x: InfluxQL over ``/query`` (the v1 API; Debian's influxd 1.6
has nothing else), for the centre (:class:`~gateway.stores.centre.CentreReader`) and
the exports (``window``).

Every call is one HTTP request, or two where the measurements must be known
first (``SHOW FIELD KEYS``, then the question): InfluxQL answers many series in
one statement (``GROUP BY *`` with ``ORDER BY time DESC LIMIT 1`` is "the
latest point of each series"), and several statements go in one request. So
the count never depends on the number of devices or sites.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from protocols.config import StoreSection

from .centre import (
    DeliveryRow,
    RejectionRow,
    SeriesPoint,
    is_reading_measurement,
)
from .centre_rows import (
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
from .http_read import HttpReads, basic_auth
from .reading import Reading, StoreUnreadable

__all__ = ["InfluxDB1Reader", "influxql"]

_TAGS = ("site", "device", "sensor")
_END = 8_000_000_000_000  # ms, year 2223: within every store's time range


def _ident(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _str(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def influxql(since_ms: int, until_ms: int, domains: Sequence[str],
             devices: Sequence[str]) -> str:
    """``SELECT *`` of the domains' measurements in the window (ms, end exclusive)."""
    q = (f"SELECT * FROM {','.join(_ident(d) for d in domains)} "
         f"WHERE time >= {since_ms}ms AND time < {until_ms}ms")
    if devices:
        q += " AND (" + " OR ".join(f"device = {_str(d)}" for d in devices) + ")"
    return q


def _match(tag: str, values: Sequence[str]) -> str:
    """`` AND tag =~ /^(a|b)$/`` for checked ids, or nothing when ``values`` is empty."""
    if not values:
        return ""
    return f" AND {_ident(tag)} =~ /^({'|'.join(check_ids(values, tag))})$/"


class InfluxDB1Reader(PointsFromPrimitives):
    """Both readers of an InfluxDB 1.x database; blocking, read-only."""

    def __init__(self, cfg: StoreSection, lookback_s: int = 30 * 86400,
                 chunk_s: int = 3600) -> None:
        self._db = cfg.database
        self._lookback_ms = lookback_s * 1000
        self._chunk_ms = chunk_s * 1000
        self.what = f"InfluxDB 1 database '{cfg.database}'"
        self._http = HttpReads(cfg.reader_urls, cfg.timeout_s * 6, self.what,
                               {"Accept": "application/json",
                                **basic_auth(cfg.username, cfg.password)}, cfg.ca_file)

    # -- plumbing ---------------------------------------------------------------------
    def _docs(self, q: str, chunked: bool = False) -> list[dict[str, Any]]:
        params = {"q": q, "db": self._db, "epoch": "ms"}
        if chunked:
            params |= {"chunked": "true", "chunk_size": "10000"}
        body = self._http.get("/query", params)
        try:
            return [json.loads(line) for line in body.splitlines() if line.strip()]
        except ValueError as exc:
            raise StoreUnreadable(f"{self.what} answered something that is not JSON: {exc}") \
                from None

    def _results(self, q: str, chunked: bool = False) -> list[list[dict[str, Any]]]:
        """The series of each statement of ``q``, in order."""
        out: dict[int, list[dict[str, Any]]] = {}
        for doc in self._docs(q, chunked):
            if "error" in doc:
                raise StoreUnreadable(f"{self.what}: {doc['error']}")
            for result in doc.get("results", []):
                if "error" in result:
                    raise StoreUnreadable(f"{self.what}: {result['error']} "
                                          "(check [store] database and its permissions)")
                out.setdefault(int(result.get("statement_id", 0)), []).extend(
                    result.get("series", []) or [])
        return [out[k] for k in sorted(out)]

    def _series(self, q: str, chunked: bool = False) -> list[dict[str, Any]]:
        return [s for r in self._results(q, chunked) for s in r]

    def _since(self) -> int:
        return int(time.time() * 1000) - self._lookback_ms

    def _fields(self) -> dict[str, list[str]]:
        """Reading measurement -> its float fields (``SHOW FIELD KEYS``)."""
        out: dict[str, list[str]] = {}
        for s in self._series("SHOW FIELD KEYS"):
            name = str(s["name"])
            if is_reading_measurement(name):
                out[name] = [str(k) for k, typ in s.get("values", []) if typ == "float"]
        return out

    @staticmethod
    def _points(series: Iterable[dict[str, Any]], key_tag: str, measurement: str
                ) -> tuple[list[Sample], list[tuple[tuple[str, str], int, dict[str, str]]]]:
        """(number samples of ``measurement``, (key, time, strings) of its ``_info``)."""
        nums: list[Sample] = []
        infos: list[tuple[tuple[str, str], int, dict[str, str]]] = []
        for s in series:
            tags = dict(s.get("tags") or {})
            cols = list(s["columns"])
            for row in s.get("values", []):
                rec = dict(zip(cols, row, strict=True))
                site = str(tags.get("site") or rec.get("site") or "")
                key = str(tags.get(key_tag) or rec.get(key_tag) or "")
                t = int(rec.pop("time"))
                if s["name"] == measurement:
                    nums += [(site, key, t, k, float(v)) for k, v in rec.items()
                             if isinstance(v, (int, float)) and not isinstance(v, bool)]
                else:
                    strings = {k: str(v) for k, v in {**rec, **tags}.items()
                               if k not in ("site", key_tag, "v") and v not in (None, "")}
                    infos.append(((site, key), t, strings))
        return nums, infos

    def _latest(self, measurement: str, key_tag: str, sites: Sequence[str]
                ) -> list[tuple[str, str, int, dict[str, float], dict[str, str]]]:
        """(site, key, time, fields, strings) of each key's newest point."""
        q = (f"SELECT * FROM {_ident(measurement)},{_ident(measurement + '_info')} "
             f"WHERE time >= {self._since()}ms{_match('site', sites)} "
             "GROUP BY * ORDER BY time DESC LIMIT 1")
        nums, infos = self._points(self._series(q), key_tag, measurement)
        strings = latest_strings(infos)
        return [(s, k, t, f, strings.get((s, k), {}))
                for (s, k), (t, f) in sorted(latest_of(nums).items())]

    def _history(self, measurement: str, key_tag: str, sites: Sequence[str], since_ms: int,
                 until_ms: int) -> list[tuple[str, str, int, dict[str, float], dict[str, str]]]:
        """(site, key, time, fields, strings) of every point in the window, oldest first;
        strings from the companion of the same time."""
        q = (f"SELECT * FROM {_ident(measurement)},{_ident(measurement + '_info')} "
             f"WHERE time >= {since_ms}ms AND time < {until_ms}ms{_match('site', sites)} "
             "GROUP BY *")
        nums, infos = self._points(self._series(q, chunked=True), key_tag, measurement)
        at = {(k[0], k[1], t): s for k, t, s in infos}
        pts = points_of(nums)
        return [(s, k, t, f, at.get((s, k, t), {}))
                for (s, k, t), f in sorted(pts.items(), key=lambda kv: (kv[0][2], kv[0][:2]))]

    # -- the CentreReader protocol ------------------------------------------------------
    def check(self) -> None:
        self._series("SHOW MEASUREMENTS LIMIT 1")

    def sites(self) -> list[str]:
        return sorted({str(v[1]) for s in self._series('SHOW TAG VALUES WITH KEY = "site"')
                       for v in s.get("values", [])})

    def latest_reading_times(self, sites: Sequence[str] = ()) -> dict[tuple[str, str], int]:
        fields = self._fields()
        out: dict[tuple[str, str], int] = {}
        if not fields:
            return out
        q = (f"SELECT * FROM {','.join(_ident(m) for m in fields)} WHERE time >= "
             f"{self._since()}ms{_match('site', sites)} GROUP BY site, device "
             "ORDER BY time DESC LIMIT 1")
        for s in self._series(q):
            tags = s.get("tags") or {}
            key = (str(tags.get("site", "")), str(tags.get("device", "")))
            for row in s.get("values", []):
                out[key] = max(out.get(key, 0), int(row[0]))
        return out

    def latest_values(self, sites: Sequence[str] = (), devices: Sequence[str] = (),
                      since_ms: int | None = None) -> list[Reading]:
        fields = self._fields()
        stmts = [(m, f) for m, fs in fields.items() for f in fs]
        if not stmts:
            return []
        since = self._since() if since_ms is None else since_ms
        where = f"time >= {since}ms{_match('site', sites)}{_match('device', devices)}"
        q = ";".join(f"SELECT last({_ident(f)}) FROM {_ident(m)} WHERE {where} "
                     "GROUP BY site, device, sensor" for m, f in stmts)
        out: list[Reading] = []
        for (m, f), series in zip(stmts, self._results(q), strict=False):
            for s in series:
                tags = s.get("tags") or {}
                for t, v in s.get("values", []):
                    if isinstance(v, (int, float)):
                        out.append(Reading(int(t), str(tags.get("site", "")),
                                           str(tags.get("device", "")),
                                           str(tags.get("sensor", "")), m, f, float(v)))
        out.sort(key=lambda r: (r.site, r.device, r.sensor, r.domain, r.quantity))
        return out

    def readings(self, since_ms: int, until_ms: int, sites: Sequence[str] = (),
                 devices: Sequence[str] = (), domains: Sequence[str] = (),
                 quantities: Sequence[str] = ()) -> Iterator[Reading]:
        doms = check_ids(domains, "domain") if domains else list(self._fields())
        if not doms:
            return
        want = set(quantities)
        start = since_ms
        while start < until_ms:
            end = min(until_ms, (start // self._chunk_ms + 1) * self._chunk_ms)
            q = (f"SELECT * FROM {','.join(_ident(d) for d in doms)} WHERE time >= {start}ms "
                 f"AND time < {end}ms{_match('site', sites)}{_match('device', devices)}")
            rows: list[Reading] = []
            for s in self._series(q, chunked=True):
                _rows(s, rows)
            rows = [r for r in rows if not want or r.quantity in want]
            rows.sort(key=reading_order)
            yield from rows
            start = end

    def series(self, site: str, device: str, domain: str, quantity: str,
               since_ms: int, until_ms: int, step_ms: int) -> list[SeriesPoint]:
        check_ids([site, device, domain, quantity])
        q = (f"SELECT mean({_ident(quantity)}) FROM {_ident(domain)} WHERE site = {_str(site)} "
             f"AND device = {_str(device)} AND time >= {since_ms}ms AND time < {until_ms}ms "
             f"GROUP BY time({max(int(step_ms), 1)}ms), sensor fill(none)")
        out = [SeriesPoint(str((s.get("tags") or {}).get("sensor", "")), int(t), float(v))
               for s in self._series(q) for t, v in s.get("values", []) if v is not None]
        out.sort(key=lambda p: (p.sensor, p.time_ms))
        return out

    def _hourly(self, measurement: str, group: str, since_ms: int, until_ms: int,
                sites: Sequence[str]) -> list[tuple[dict[str, str], int, dict[str, float]]]:
        q = (f"SELECT * FROM {_ident(measurement)} WHERE time >= {since_ms}ms AND time < "
             f"{until_ms}ms{_match('site', sites)} GROUP BY {group}")
        out = []
        for s in self._series(q, chunked=True):
            tags = {k: str(v) for k, v in (s.get("tags") or {}).items()}
            cols = list(s["columns"])
            for row in s.get("values", []):
                rec = dict(zip(cols, row, strict=True))
                t = int(rec.pop("time"))
                out.append((tags, t, {k: float(v) for k, v in rec.items()
                                      if isinstance(v, (int, float))}))
        return out

    def delivery(self, since_ms: int, until_ms: int,
                 sites: Sequence[str] = ()) -> list[DeliveryRow]:
        rows = [delivery_row(tags["site"], tags["device"], t, f) for tags, t, f in
                self._hourly("delivery", "site, device", since_ms, until_ms, sites)]
        rows.sort(key=lambda r: (r.hour_ms, r.site, r.device))
        return rows

    def rejections(self, since_ms: int, until_ms: int,
                   sites: Sequence[str] = ()) -> list[RejectionRow]:
        rows = [rejection_row(tags["site"], tags["device"], tags.get("reason", ""), t, f)
                for tags, t, f in
                self._hourly("rejections", "site, device, reason", since_ms, until_ms, sites)]
        rows.sort(key=lambda r: (r.hour_ms, r.site, r.device, r.reason))
        return rows

    def queries(self) -> int:
        return self._http.count

    # -- the export's window (StoreReader) ------------------------------------------------
    def window(self, since_ms: int, until_ms: int, domains: Sequence[str],
               devices: Sequence[str], sites: Sequence[str] = ()) -> list[Reading]:
        out: list[Reading] = []
        q = influxql(since_ms, until_ms, domains, devices) + _match("site", sites)
        for s in self._series(q, chunked=True):
            _rows(s, out)
        return out

    def close(self) -> None:
        pass


def _rows(series: dict[str, object], out: list[Reading]) -> None:
    domain = str(series["name"])
    cols = list(series["columns"])  # type: ignore[call-overload]
    it = cols.index("time")
    tag_at = {t: cols.index(t) for t in _TAGS if t in cols}
    fields = [(i, c) for i, c in enumerate(cols) if c != "time" and c not in tag_at]
    for row in series["values"]:  # type: ignore[attr-defined]
        t = int(row[it])
        site = row[tag_at["site"]] if "site" in tag_at else ""
        device = row[tag_at["device"]] if "device" in tag_at else ""
        sensor = (row[tag_at["sensor"]] if "sensor" in tag_at else "") or ""
        for i, name in fields:
            v = row[i]
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                out.append(Reading(t, site or "", device or "", sensor, domain, name, float(v)))
