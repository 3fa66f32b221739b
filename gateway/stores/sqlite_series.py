"""The SQL of the SQLite reader's series path: ``readings()`` with a filter that narrows.

``readings`` has two indexes: the UNIQUE ``(measurement, site, device, sensor,
field, time_ms)`` and ``readings_time (time_ms)``. A window over the time index
reads every series' rows in it, so one series costs as much as the whole store
(386 ms against 6.5 ms for a day of one series in a 10 M-reading store). When
sites, devices or quantities are given, the reader instead

1. enumerates the matching series with :func:`series_walk_sql`: a recursive
   loose scan of the UNIQUE index seeded by key prefixes (measurement,
   measurement + site, or measurement + site + device), one index seek per
   series and never a read of the rows, and
2. range-scans all of them by time in one statement per time chunk
   (:data:`RANGE_SQL`): the series keys go in as one JSON array, so the query
   count does not grow with the number of series.

``EXPLAIN QUERY PLAN`` of :data:`RANGE_SQL` (SQLite 3.40)::

    SCAN j VIRTUAL TABLE INDEX 1:
    SEARCH x USING INDEX sqlite_autoindex_readings_1
        (measurement=? AND site=? AND device=? AND sensor=? AND field=? AND time_ms>? AND time_ms<?)
    USE TEMP B-TREE FOR ORDER BY

that is, one seek and a range scan per series, then a sort of that chunk's rows
into (time, site, device, sensor, quantity, domain) order: the sort holds at most
one chunk (``chunk_s``) of the matching series, and the reader streams the
sorted rows from the cursor. (A row-value ``IN (VALUES ...)`` over the key plans
the same but is bounded by SQLite's variable limit; a UNION per series is one
statement too but its text grows with the series.)
"""

from __future__ import annotations

__all__ = ["RANGE_SQL", "series_walk_sql", "time_window_sql"]

_KEY = ("measurement", "site", "device", "sensor", "field")
_ORDER = "ORDER BY measurement, site, device, sensor, field LIMIT 1"


def series_walk_sql(depth: int) -> str:
    """Rows (measurement, site, device, sensor, field): each series whose key starts
    with one of the ``depth``-long prefixes (1: measurement, 2: + site, 3: + device)
    in the JSON array ``?1``."""
    if depth not in (1, 2, 3):
        raise ValueError(f"prefix depth 1-3, not {depth}")
    seed_where = " AND ".join(f"{c} = json_extract(j.value, '$[{i}]')"
                              for i, c in enumerate(_KEY[:depth]))
    seed = f"SELECT (SELECT rowid FROM readings WHERE {seed_where} {_ORDER}) FROM json_each(?1) j"
    nxt = []
    # the next series after r: the next field of its sensor, else the next sensor of its
    # device, ... up to (not past) the prefix the walk was seeded with
    for level in range(4, depth - 1, -1):
        same = " AND ".join(f"{c} = r.{c}" for c in _KEY[:level])
        nxt.append(f"(SELECT rowid FROM readings WHERE {same} AND {_KEY[level]} > "
                   f"r.{_KEY[level]} {_ORDER})")
    return (f"WITH RECURSIVE k(rid) AS ({seed} UNION ALL SELECT coalesce({', '.join(nxt)}) "
            "FROM k JOIN readings r ON r.rowid = k.rid WHERE k.rid IS NOT NULL) "
            "SELECT r.measurement, r.site, r.device, r.sensor, r.field "
            "FROM k JOIN readings r ON r.rowid = k.rid")


# The rows of the series in JSON ``?1`` ([[measurement, site, device, sensor, field], ...])
# in [?2, ?3), as Reading fields, in the order of CentreReader.readings.
RANGE_SQL = (
    "SELECT x.time_ms, x.site, x.device, x.sensor, x.measurement, x.field, x.value "
    "FROM json_each(?1) j JOIN readings x ON "
    + " AND ".join(f"x.{c} = json_extract(j.value, '$[{i}]')" for i, c in enumerate(_KEY))
    + " AND x.time_ms >= ?2 AND x.time_ms < ?3 "
    "ORDER BY x.time_ms, x.site, x.device, x.sensor, x.field, x.measurement")


def time_window_sql(domains: int) -> str:
    """Every row of ``domains`` measurements (``?3``...) in [?1, ?2) through the time
    index, in the order of CentreReader.readings.

    ``+measurement`` keeps SQLite on the time index (on the UNIQUE index every window
    would scan the whole measurement). Plan: ``SEARCH readings USING INDEX readings_time
    (time_ms>? AND time_ms<?)`` + ``USE TEMP B-TREE FOR RIGHT PART OF ORDER BY``: the
    sort only orders rows of equal time, so the rows stream in time order."""
    return ("SELECT time_ms, site, device, sensor, measurement, field, value FROM readings "
            "WHERE time_ms >= ?1 AND time_ms < ?2 AND +measurement IN "
            f"({','.join('?' * domains)}) ORDER BY time_ms, site, device, sensor, field, "
            "measurement")
