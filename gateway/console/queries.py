"""What the console asks the store, one reader per store kind.

Two questions, each answered by the store itself (downsampling happens in the
query, never in the browser):

- ``latest``: the newest value of each quantity per device over the last hour;
- ``series``: one quantity of one device over a window, averaged per ``step``,
  one line per sensor (two sensors may measure the same quantity).

Delivery (per device and hour) is not asked of the store: the console reads the
gateway's accounting (see :mod:`gateway.console.state`).

The HTTP readers (InfluxDB 1, VictoriaMetrics, InfluxDB 2) are in
:mod:`gateway.console.influx`. Readers are blocking (the app calls them through
``asyncio.to_thread``) and read-only: the SQLite reader opens the store
``mode=ro``; the HTTP readers only ever send queries. Every failure becomes
:class:`StoreUnavailable` with a line a user can act on. Identifiers put into
query text are checked against the
contract's id pattern first (see :func:`check_id`).
"""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from protocols.config import Config
from protocols.quantities import Registry

from .errors import ConsoleError

__all__ = ["LATEST_WINDOW_S", "Latest", "SQLiteReader", "Series", "StoreReader",
           "StoreUnavailable", "check_id", "domain_of", "open_reader"]

LATEST_WINDOW_S = 3600
_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_QUANTITY = re.compile(r"^[a-z0-9_]{1,32}$")


class StoreUnavailable(ConsoleError):
    """The store did not answer (down, wrong URL, wrong credentials)."""


def check_id(value: str) -> str:
    if not _ID.match(value):
        raise ValueError(f"not an identifier: {value!r}")
    return value


def domain_of(registry: Registry, quantity: str) -> str:
    """The measurement ``quantity`` lands in; ``device`` (never a reading) when unknown."""
    return registry.domain_of(quantity) or "device"


#: device -> quantity -> (value, time in ms; 0 when the store does not say)
Latest = dict[str, dict[str, tuple[float, int]]]


@dataclass(frozen=True)
class Series:
    """Downsampled points aligned on one time axis (ms), one value list per sensor."""

    times: list[int] = field(default_factory=list)
    lines: dict[str, list[float | None]] = field(default_factory=dict)

    @classmethod
    def align(cls, per_sensor: Mapping[str, Iterable[tuple[int, float]]]) -> Series:
        points = {s: dict(pts) for s, pts in per_sensor.items()}
        times = sorted({t for pts in points.values() for t in pts})
        return cls(times, {s or "-": [pts.get(t) for t in times]
                           for s, pts in sorted(points.items())})

    def as_json(self) -> dict[str, Any]:
        return {"times_ms": self.times, "sensors": self.lines}


class StoreReader(Protocol):
    what: str
    #: the site's quantities: which measurements are asked, which domain a quantity is in
    registry: Registry

    def ping(self) -> None: ...

    def latest(self, site: str, window_s: int = LATEST_WINDOW_S,
               device: str | None = None) -> Latest: ...

    def series(self, site: str, device: str, quantity: str, since_ms: int, until_ms: int,
               step_ms: int) -> Series: ...


def _now_ms() -> int:
    return int(time.time() * 1000)


# -- SQLite --------------------------------------------------------------------------

class SQLiteReader:
    """The embedded store (gateway/stores/sqlite.py), opened read-only per question.

    Queries name ``measurement, site, device`` so SQLite walks the table's UNIQUE
    index for one device instead of every row in the window. The measurements asked
    for are the ``registry``'s domains (the site's own ones included).
    """

    def __init__(self, path: Path, registry: Registry) -> None:
        self.path = path
        self.what = f"SQLite store {path}"
        self.registry = registry
        self._domains = registry.domains
        self._in = "measurement IN (" + ", ".join("?" * len(self._domains)) + ")"

    def _query(self, sql: str, args: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        if not self.path.exists():
            return []  # the gateway has not written yet: no readings, not an error
        try:
            con = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=2.0)
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"{self.what}: {exc} (check [store] path)") from None
        try:
            return list(con.execute(sql, args).fetchall())
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return []
            raise StoreUnavailable(f"{self.what}: {exc}") from None
        except sqlite3.DatabaseError as exc:
            raise StoreUnavailable(f"{self.what} is unreadable: {exc}") from None
        finally:
            con.close()

    def ping(self) -> None:
        self._query("SELECT 1", ())

    def latest(self, site: str, window_s: int = LATEST_WINDOW_S,
               device: str | None = None) -> Latest:
        since = _now_ms() - window_s * 1000
        if device is None:
            rows = self._query(
                "SELECT device, field, value, max(time_ms) FROM readings "
                f"WHERE time_ms >= ? AND site = ? AND {self._in} "
                "GROUP BY device, field", (since, site, *self._domains))
        else:  # one device: walk the unique index from (measurement, site, device)
            rows = self._query(
                "SELECT device, field, value, max(time_ms) FROM readings "
                f"WHERE {self._in} AND site = ? AND device = ? "
                "AND time_ms >= ? GROUP BY field", (*self._domains, site, device, since))
        out: Latest = {}
        for device, quantity, value, t in rows:
            out.setdefault(str(device), {})[str(quantity)] = (float(value), int(t))
        return out

    def series(self, site: str, device: str, quantity: str, since_ms: int, until_ms: int,
               step_ms: int) -> Series:
        rows = self._query(
            "SELECT sensor, (time_ms / ?) * ? AS t, avg(value) FROM readings "
            "WHERE measurement = ? AND site = ? AND device = ? AND field = ? "
            "AND time_ms >= ? AND time_ms < ? GROUP BY sensor, t ORDER BY t",
            (step_ms, step_ms, domain_of(self.registry, quantity), site, device, quantity,
             since_ms, until_ms))
        per: dict[str, list[tuple[int, float]]] = {}
        for sensor, t, v in rows:
            per.setdefault(str(sensor), []).append((int(t), float(v)))
        return Series.align(per)



def open_reader(cfg: Config) -> StoreReader:
    """The reader for the configured store kind (influxdb2: Flux or VictoriaMetrics),
    asking for the site's quantities (``cfg.registry``)."""
    store, registry = cfg.store, cfg.registry
    if store.kind == "sqlite":
        return SQLiteReader(Path(store.path), registry)
    from .influx import FluxReader, InfluxQLReader, VictoriaReader, is_victoria

    if store.kind == "influxdb1":
        return InfluxQLReader(store, registry)
    api = cfg.console.query_api
    if api == "victoria" or (api == "auto" and is_victoria(store)):
        return VictoriaReader(store, registry)
    return FluxReader(store, registry)
