"""The reader of the embedded SQLite store (``readings`` and ``text_fields``, see ``sqlite``).

One class serves the centre (:class:`~gateway.stores.centre.CentreReader`) and the
exports (``window``). Opened ``mode=ro``: a reader never writes, and may run while
the gateway writes (WAL).

"Latest" questions walk the UNIQUE index ``(measurement, site, device, sensor,
field, time_ms)`` series by series inside one recursive SQL statement (a loose
index scan: one seek per series, never a scan of the rows), then take each
series' newest row by one more seek. Window questions join those series to
their rows in the window. ``readings()`` reads the matching series through
the UNIQUE index when sites, devices or quantities narrow it (``sqlite_series``),
else the window through the time index, one time chunk per statement, streamed
from the cursor. So every call is a fixed number of statements whatever the
number of sites and devices.

Where the writer puts the contract's other tags: a ``gateway`` point's
``gateway`` tag is in the ``device`` column, a ``rejections`` point's ``reason``
in the ``sensor`` column (see ``sqlite.rows_of``); strings are in
``text_fields`` (the ``_info`` companions' tags are not stored: same strings).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from protocols.config import StoreSection
from protocols.sqlitefile import open_readonly

from .centre import (
    DeliveryRow,
    DevicePoint,
    GatewayPoint,
    RejectionRow,
    SeriesPoint,
    StationPoint,
    is_reading_measurement,
)
from .centre_rows import (
    Sample,
    check_ids,
    delivery_row,
    device_point,
    gateway_point,
    latest_of,
    points_of,
    rejection_row,
    station_point,
)
from .reading import Reading, StoreUnreadable
from .sqlite_series import RANGE_SQL, series_walk_sql, time_window_sql

__all__ = ["SQLiteReader"]

_ORDER = "ORDER BY measurement, site, device, sensor, field LIMIT 1"
_END = 8_000_000_000_000  # ms, year 2223: within every store's time range
_BATCH = 2000  # rows fetched from a cursor per lock hold: streams, never the whole window
_MAX_SEEDS = 50_000  # (measurement, site, device) seeds past this: walk sites, filter devices


def _walk(table: str, by_site: bool) -> str:
    """A recursive CTE ``k(rid)``: one rowid per series of the measurements in JSON ``?1``
    (and, ``by_site``, only of the (measurement, site) pairs in ``?1``)."""
    if by_site:
        seed = (f"SELECT (SELECT rowid FROM {table} WHERE measurement = json_extract(j.value, "
                f"'$[0]') AND site = json_extract(j.value, '$[1]') {_ORDER}) FROM json_each(?1) j")
    else:
        seed = f"SELECT (SELECT rowid FROM {table} WHERE measurement = j.value {_ORDER}) " \
               "FROM json_each(?1) j"
    nxt = [f"(SELECT rowid FROM {table} WHERE measurement = r.measurement AND site = r.site "
           "AND device = r.device AND sensor = r.sensor AND field > r.field " + _ORDER + ")",
           f"(SELECT rowid FROM {table} WHERE measurement = r.measurement AND site = r.site "
           "AND device = r.device AND sensor > r.sensor " + _ORDER + ")",
           f"(SELECT rowid FROM {table} WHERE measurement = r.measurement AND site = r.site "
           "AND device > r.device " + _ORDER + ")"]
    if not by_site:
        nxt.append(f"(SELECT rowid FROM {table} WHERE measurement = r.measurement "
                   "AND site > r.site " + _ORDER + ")")
    return (f"WITH RECURSIVE k(rid) AS ({seed} UNION ALL SELECT coalesce({', '.join(nxt)}) "
            f"FROM k JOIN {table} r ON r.rowid = k.rid WHERE k.rid IS NOT NULL) ")


def _same_series(a: str, b: str) -> str:
    return " AND ".join(f"{a}.{c} = {b}.{c}"
                        for c in ("measurement", "site", "device", "sensor", "field"))


def _latest_sql(table: str, by_site: bool) -> str:
    """Each series' newest row at or after ``?2``."""
    return (_walk(table, by_site) +
            "SELECT s.measurement, s.site, s.device, s.sensor, s.field, x.value, x.time_ms "
            f"FROM k JOIN {table} s ON s.rowid = k.rid JOIN {table} x ON x.rowid = "
            f"(SELECT y.rowid FROM {table} y WHERE {_same_series('y', 's')} "
            "ORDER BY y.time_ms DESC LIMIT 1) WHERE x.time_ms >= ?2")


def _range_sql(table: str, by_site: bool) -> str:
    """Every row of the series in ``[?2, ?3)``, oldest first."""
    return (_walk(table, by_site) +
            "SELECT x.measurement, x.site, x.device, x.sensor, x.field, x.value, x.time_ms "
            f"FROM k JOIN {table} s ON s.rowid = k.rid JOIN {table} x ON "
            f"{_same_series('x', 's')} AND x.time_ms >= ?2 AND x.time_ms < ?3 "
            "ORDER BY x.time_ms")


class SQLiteReader:
    """Both readers of the embedded store; blocking, one read-only connection."""

    def __init__(self, cfg: StoreSection, lookback_s: int = 30 * 86400,
                 chunk_s: int = 3600) -> None:
        self._path = Path(cfg.path)
        self._timeout = cfg.timeout_s
        self._lookback_ms = lookback_s * 1000
        self._chunk_ms = chunk_s * 1000
        self._db: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self._queries = 0
        self.what = f"readings database {self._path}"

    # -- plumbing ---------------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            try:
                db = open_readonly(self._path, max(self._timeout, 30.0),
                                   check_same_thread=False)
            except sqlite3.Error as exc:
                raise StoreUnreadable(f"{self.what}: {exc} (check [store] path)") from None
            if db is None:
                raise StoreUnreadable(f"{self.what} does not exist "
                                      "(check [store] path; the gateway creates it)")
            self._db = db
        return self._db

    def _rows(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            db = self._conn()
            self._queries += 1
            try:
                return db.execute(sql, tuple(args)).fetchall()
            except sqlite3.OperationalError as exc:
                if "no such table" in str(exc):
                    return []  # written by an older gateway: no text_fields yet
                raise StoreUnreadable(f"{self.what}: {exc}") from None
            except sqlite3.Error as exc:
                raise StoreUnreadable(f"{self.what} is unreadable: {exc} "
                                      "(check [store] path)") from None

    def _stream(self, sql: str, args: Sequence[Any] = ()) -> Iterator[tuple[Any, ...]]:
        """The rows of one statement, fetched ``_BATCH`` at a time from its cursor: a
        window never sits in memory whole. The lock is held per batch, not across the
        caller's work, so other calls (other threads, or the caller itself) go between."""
        with self._lock:
            db = self._conn()
            self._queries += 1
            try:
                cur = db.execute(sql, tuple(args))
                rows = cur.fetchmany(_BATCH)
            except sqlite3.OperationalError as exc:
                if "no such table" in str(exc):
                    return  # written by an older gateway: no text_fields yet
                raise StoreUnreadable(f"{self.what}: {exc}") from None
            except sqlite3.Error as exc:
                raise StoreUnreadable(f"{self.what} is unreadable: {exc} "
                                      "(check [store] path)") from None
        while rows:
            yield from rows
            with self._lock:
                try:
                    rows = cur.fetchmany(_BATCH)
                except sqlite3.Error as exc:
                    raise StoreUnreadable(f"{self.what}: {exc}") from None

    def _since(self) -> int:
        return int(time.time() * 1000) - self._lookback_ms

    def _series_rows(self, table: str, measurements: Sequence[str], sites: Sequence[str],
                     since_ms: int, until_ms: int | None) -> Iterator[tuple[Any, ...]]:
        """Rows (measurement, site, device, sensor, field, value, time) of the series:
        each one's newest at or after ``since_ms`` (``until_ms`` None), or all in the range."""
        by_site = bool(sites)
        keys: list[Any] = [[m, s] for m in measurements for s in check_ids(sites)] \
            if by_site else list(measurements)
        if until_ms is None:
            return self._stream(_latest_sql(table, by_site), (json.dumps(keys), since_ms))
        return self._stream(_range_sql(table, by_site), (json.dumps(keys), since_ms, until_ms))

    def _samples(self, measurement: str, sites: Sequence[str], since_ms: int,
                 until_ms: int | None) -> tuple[list[Sample], list[tuple[str, str, int, str, str]]]:
        """(number samples, string samples) of one reserved measurement."""
        nums = [(r[1], r[2], int(r[6]), r[4], float(r[5]))
                for r in self._series_rows("readings", [measurement], sites, since_ms, until_ms)]
        texts = [(r[1], r[2], int(r[6]), r[4], str(r[5]))
                 for r in self._series_rows("text_fields", [measurement], sites, since_ms,
                                            until_ms)]
        return nums, texts

    @staticmethod
    def _latest_texts(texts: list[tuple[str, str, int, str, str]]
                      ) -> dict[tuple[str, str], dict[str, str]]:
        """(site, key) -> the strings written at its newest string time."""
        latest = latest_of((s, k, t, f, 0.0) for s, k, t, f, _ in texts)
        out: dict[tuple[str, str], dict[str, str]] = {}
        for s, k, t, f, v in texts:
            if latest[(s, k)][0] == t:
                out.setdefault((s, k), {})[f] = v
        return out

    @staticmethod
    def _texts_at(texts: list[tuple[str, str, int, str, str]]
                  ) -> dict[tuple[str, str, int], dict[str, str]]:
        out: dict[tuple[str, str, int], dict[str, str]] = {}
        for s, k, t, f, v in texts:
            out.setdefault((s, k, t), {})[f] = v
        return out

    def _reading_measurements(self) -> list[str]:
        rows = self._rows(
            "WITH RECURSIVE m(x) AS (SELECT (SELECT min(measurement) FROM readings) UNION ALL "
            "SELECT (SELECT min(measurement) FROM readings WHERE measurement > m.x) FROM m "
            "WHERE m.x IS NOT NULL) SELECT x FROM m WHERE x IS NOT NULL")
        return [str(r[0]) for r in rows if is_reading_measurement(str(r[0]))]

    # -- the CentreReader protocol ------------------------------------------------------
    def check(self) -> None:
        self._rows("SELECT 1 FROM readings LIMIT 1")

    def sites(self) -> list[str]:
        rows = self._rows(
            "WITH RECURSIVE m(x) AS (SELECT (SELECT min(measurement) FROM readings) UNION ALL "
            "SELECT (SELECT min(measurement) FROM readings WHERE measurement > m.x) FROM m "
            "WHERE m.x IS NOT NULL), "
            "s(m, x) AS (SELECT x, (SELECT min(site) FROM readings WHERE measurement = m.x) "
            "FROM m WHERE m.x IS NOT NULL UNION ALL SELECT s.m, (SELECT min(site) FROM readings "
            "WHERE measurement = s.m AND site > s.x) FROM s WHERE s.x IS NOT NULL) "
            "SELECT DISTINCT x FROM s WHERE x IS NOT NULL")
        return sorted(str(r[0]) for r in rows)

    def gateways(self, sites: Sequence[str] = ()) -> list[GatewayPoint]:
        nums, texts = self._samples("gateway", sites, self._since(), None)
        strings = self._latest_texts(texts)
        return [gateway_point(s, g, t, f, strings.get((s, g), {}))
                for (s, g), (t, f) in sorted(latest_of(nums).items())]

    def devices(self, sites: Sequence[str] = ()) -> list[DevicePoint]:
        nums, texts = self._samples("device", sites, self._since(), None)
        strings = self._latest_texts(texts)
        return [device_point(s, d, t, f, strings.get((s, d), {}))
                for (s, d), (t, f) in sorted(latest_of(nums).items())]

    def device_points(self, since_ms: int, until_ms: int,
                      sites: Sequence[str] = ()) -> list[DevicePoint]:
        nums, texts = self._samples("device", sites, since_ms, until_ms)
        at = self._texts_at(texts)
        pts = points_of(nums)
        return [device_point(s, d, t, f, at.get((s, d, t), {}))
                for (s, d, t), f in sorted(pts.items(), key=lambda kv: (kv[0][2], kv[0][:2]))]

    def stations(self, sites: Sequence[str] = ()) -> list[StationPoint]:
        nums, texts = self._samples("station", sites, self._since(), None)
        at = self._texts_at(texts)
        return [station_point(s, d, t, f, at.get((s, d, t), {}))
                for (s, d), (t, f) in sorted(latest_of(nums).items())]

    def station_history(self, sites: Sequence[str] = (),
                        devices: Sequence[str] = ()) -> list[StationPoint]:
        nums, texts = self._samples("station", sites, 0, _END)
        at = self._texts_at(texts)
        want = set(devices)
        return [station_point(s, d, t, f, at.get((s, d, t), {}))
                for (s, d, t), f in sorted(points_of(nums).items(),
                                           key=lambda kv: (kv[0][2], kv[0][:2]))
                if not want or d in want]

    def latest_reading_times(self, sites: Sequence[str] = ()) -> dict[tuple[str, str], int]:
        out: dict[tuple[str, str], int] = {}
        ms = self._reading_measurements()
        if not ms:
            return out
        for r in self._series_rows("readings", ms, sites, self._since(), None):
            key = (str(r[1]), str(r[2]))
            out[key] = max(out.get(key, 0), int(r[6]))
        return out

    def latest_values(self, sites: Sequence[str] = (), devices: Sequence[str] = (),
                      since_ms: int | None = None) -> list[Reading]:
        ms = self._reading_measurements()
        if not ms:
            return []
        want = set(devices)
        out = [Reading(int(r[6]), r[1], r[2], r[3], r[0], r[4], float(r[5]))
               for r in self._series_rows("readings", ms, sites,
                                          self._since() if since_ms is None else since_ms, None)
               if not want or r[2] in want]
        out.sort(key=lambda r: (r.site, r.device, r.sensor, r.domain, r.quantity))
        return out

    def readings(self, since_ms: int, until_ms: int, sites: Sequence[str] = (),
                 devices: Sequence[str] = (), domains: Sequence[str] = (),
                 quantities: Sequence[str] = ()) -> Iterator[Reading]:
        """Streamed one time chunk (``chunk_s``) at a time, each chunk one statement. With
        sites, devices or quantities: the matching series through the UNIQUE index (see
        ``sqlite_series``); otherwise every row of the window through the time index."""
        doms = check_ids(domains, "domain") if domains else self._reading_measurements()
        if not doms:
            return
        check_ids(sites)
        keys: str | None = None
        if sites or devices or quantities:
            keys = json.dumps(self._series_keys(doms, sites, devices, quantities))
            if keys == "[]":
                return
        start = since_ms
        while start < until_ms:
            end = min(until_ms, (start // self._chunk_ms + 1) * self._chunk_ms)
            rows = self._stream(RANGE_SQL, (keys, start, end)) if keys is not None else \
                self._stream(time_window_sql(len(doms)), (start, end, *doms))
            yield from (Reading(int(r[0]), r[1], r[2], r[3], r[4], r[5], float(r[6]))
                        for r in rows)
            start = end

    def _series_keys(self, doms: Sequence[str], sites: Sequence[str], devices: Sequence[str],
                     quantities: Sequence[str]) -> list[list[str]]:
        """The keys (measurement, site, device, sensor, field) of the matching series: one
        loose scan of the UNIQUE index from the narrowest prefixes the filter gives."""
        site_list = list(sites) or (self.sites() if devices else [])
        if devices and len(doms) * len(site_list) * len(devices) <= _MAX_SEEDS:
            depth, seeds = 3, [[m, s, d] for m in doms for s in site_list for d in devices]
        elif site_list:
            depth, seeds = 2, [[m, s] for m in doms for s in site_list]
        else:
            depth, seeds = 1, [[m] for m in doms]
        want_d, want_q = set(devices), set(quantities)
        return [list(r) for r in self._stream(series_walk_sql(depth), (json.dumps(seeds),))
                if (not want_d or r[2] in want_d) and (not want_q or r[4] in want_q)]

    def series(self, site: str, device: str, domain: str, quantity: str,
               since_ms: int, until_ms: int, step_ms: int) -> list[SeriesPoint]:
        rows = self._rows(
            "SELECT sensor, (time_ms / ?1) * ?1 AS t, avg(value) FROM readings "
            "WHERE measurement = ?2 AND site = ?3 AND device = ?4 AND field = ?5 "
            "AND time_ms >= ?6 AND time_ms < ?7 GROUP BY sensor, t ORDER BY sensor, t",
            (max(int(step_ms), 1), domain, site, device, quantity, since_ms, until_ms))
        return [SeriesPoint(str(s), int(t), float(v)) for s, t, v in rows]

    def delivery(self, since_ms: int, until_ms: int,
                 sites: Sequence[str] = ()) -> list[DeliveryRow]:
        rows = self._series_rows("readings", ["delivery"], sites, since_ms, until_ms)
        pts = points_of((r[1], r[2], int(r[6]), r[4], float(r[5])) for r in rows)
        return [delivery_row(s, d, t, f)
                for (s, d, t), f in sorted(pts.items(), key=lambda kv: (kv[0][2], kv[0][:2]))]

    def rejections(self, since_ms: int, until_ms: int,
                   sites: Sequence[str] = ()) -> list[RejectionRow]:
        rows = self._series_rows("readings", ["rejections"], sites, since_ms, until_ms)
        out = [rejection_row(r[1], r[2], r[3], int(r[6]), {r[4]: float(r[5])})
               for r in rows if r[4] == "count"]
        out.sort(key=lambda x: (x.hour_ms, x.site, x.device, x.reason))
        return out

    def queries(self) -> int:
        return self._queries

    # -- the export's window (StoreReader) ------------------------------------------------
    def _window(self, since_ms: int, until_ms: int, domains: Sequence[str],
                devices: Sequence[str], sites: Sequence[str] = (),
                quantities: Sequence[str] = ()) -> list[Reading]:
        # `+measurement`: keeps SQLite on the time index; on the UNIQUE index (measurement
        # first) every window would scan the whole measurement, O(rows x windows)
        sql = ("SELECT time_ms, site, device, sensor, measurement, field, value FROM readings "
               "WHERE time_ms >= ? AND time_ms < ? AND +measurement IN "
               f"({','.join('?' * len(domains))})")
        args: list[object] = [since_ms, until_ms, *domains]
        for col, values in (("device", devices), ("site", sites), ("field", quantities)):
            if values:
                sql += f" AND +{col} IN ({','.join('?' * len(values))})"
                args.extend(values)
        return [Reading._make(r) for r in self._rows(sql, args)]

    def window(self, since_ms: int, until_ms: int, domains: Sequence[str],
               devices: Sequence[str], sites: Sequence[str] = ()) -> list[Reading]:
        return self._window(since_ms, until_ms, domains, devices, sites)

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
