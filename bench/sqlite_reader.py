"""The SQLite centre reader's ``readings()``: series index against time index.

``python -m bench.sqlite_reader [--db PATH] [--sites 30] [--devices 24] [--repeat 3]``

Fills (once: an existing ``--db`` is reused) a store with a day of air readings
(co2, temperature, humidity every 60 s) of ``--sites`` x ``--devices`` devices,
rows written straight into the writer's schema (``sqlite.SCHEMA``), then times
``readings()`` for one day of one series and one hour of one site (cold, then the
median of ``--repeat`` warm calls), and the rows and store queries each took; then
Python's peak memory (tracemalloc) while a whole day of every series is read.
Prints one JSON document; docs/benchmarks.md ("The centre's reader") has the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from gateway.stores.sqlite import SCHEMA
from gateway.stores.sqlite_reader import SQLiteReader
from protocols.config import parse_config

HOUR = 3_600_000
START = 1_780_000_000_000 // HOUR * HOUR


def rows(sites: int, devices: int) -> Iterator[tuple[Any, ...]]:
    """One day of air rows, series after series (the UNIQUE index's order)."""
    for s in range(sites):
        for d in range(devices):
            for f, base in (("co2", 400), ("humidity", 40), ("temperature", 20)):
                for k in range(1440):
                    yield ("air", f"site-{s:03d}", f"air-{d:03d}", "scd41", f,
                           base + (k + d) % 50, START + k * 60_000 + d * 17)


def fill(path: Path, sites: int, devices: int) -> None:
    con = sqlite3.connect(path)
    con.executescript(SCHEMA)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=OFF")
    con.executemany("INSERT INTO readings VALUES (?, ?, ?, ?, ?, ?, ?)", rows(sites, devices))
    con.commit()
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()


def timed(fn: Callable[[], int], repeat: int) -> dict[str, Any]:
    t0 = time.perf_counter()
    n = fn()
    cold = (time.perf_counter() - t0) * 1000
    warm = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        warm.append((time.perf_counter() - t0) * 1000)
    return {"rows": n, "cold_ms": round(cold, 1), "warm_ms": round(statistics.median(warm), 1)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.sqlite_reader", description=__doc__)
    ap.add_argument("--db", type=Path, default=Path("/tmp/bench-sqlite-reader.sqlite"))
    ap.add_argument("--sites", type=int, default=30)
    ap.add_argument("--devices", type=int, default=24)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args(argv)
    if not a.db.exists():
        t0 = time.time()
        fill(a.db, a.sites, a.devices)
        print(f"filled {a.db} in {time.time() - t0:.0f} s", file=sys.stderr)
    cfg = parse_config({"store": {"kind": "sqlite", "path": str(a.db)}}, env={},
                       need_site=False)
    r = SQLiteReader(cfg.store)
    day = (START, START + 24 * HOUR)
    hour = (START + 12 * HOUR, START + 13 * HOUR)
    out: dict[str, Any] = {"readings": r._conn().execute(
        "SELECT count(*) FROM readings").fetchone()[0], "loadavg": os.getloadavg()}

    def count(fn: Callable[[], Iterator[Any]]) -> Callable[[], int]:
        def go() -> int:
            q0 = r.queries()
            n = sum(1 for _ in fn())
            out.setdefault("queries", {})[name] = r.queries() - q0
            return n
        return go
    for name, fn in {
        "one series, one day": lambda: r.readings(*day, sites=["site-007"], devices=["air-011"],
                                                  domains=["air"], quantities=["co2"]),
        "device + quantity, no site: 30 series, one day": lambda: r.readings(
            *day, devices=["air-011"], quantities=["co2"]),
        "device, no site: 90 series, one day": lambda: r.readings(*day, devices=["air-011"]),
        "one site, one hour": lambda: r.readings(*hour, sites=["site-007"]),
        "one quantity, one hour": lambda: r.readings(*hour, quantities=["co2"]),
        "everything, one hour": lambda: r.readings(*hour),
    }.items():
        out[name] = timed(count(fn), a.repeat)
        print(name, out[name], file=sys.stderr)
    tracemalloc.start()  # Python's peak while a day of everything streams through
    out["everything, one day: rows"] = sum(1 for _ in r.readings(*day))
    out["everything, one day: peak_kb"] = tracemalloc.get_traced_memory()[1] // 1024
    tracemalloc.stop()
    print("peak kB", out["everything, one day: peak_kb"], file=sys.stderr)
    out["loadavg_after"] = os.getloadavg()
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
