"""The city console at scale: page timings and store queries per page view.

``python -m bench.city_console [--sites 100] [--devices 50] [--interval-s 300]
[--store PATH] [--views 5]``

1. Fills a SQLite store (the gateways' own mapping: ``gateway.stores.sqlite.rows_of``)
   with 24 h of ``--sites`` x ``--devices``: readings (co2, temperature) every
   ``--interval-s``, a ``device`` point every 30 min, a ``gateway`` point every
   30 s per site, hourly ``delivery``, one ``station`` per device; a few devices
   silent or offline, one site's gateway down, one with a backlog. ``--store``
   keeps the file for the next run (filled once).
2. Times what the cache asks the store in the background (``refresh``: the
   snapshot, 24 h of delivery, one site's latest values: seconds and store
   queries), then runs the city app in process over that store
   (``make_centre_reader``) and times, warm (the app started, the file in the OS
   cache), the city page, a site page (100 devices a page), a device page, the
   map and the API: ``warm`` within the cache period (what any number of open
   pages costs: the snapshot is shared; the store queries the view sent) and
   ``expired`` with the cache expired before the view (it waits at most 0.5 s for
   the refresh, then shows the last answer); medians of ``--views``.

Prints one JSON document; docs/benchmarks.md has the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from gateway.stores.sqlite import SCHEMA, rows_of
from protocols.config import parse_config
from tests.gateway import city_points as cp

HOUR = 3_600_000
BATCH = 20_000


def _points(sites: int, devices: int, interval_s: int, now: int) -> Iterator[list[Any]]:
    """The city, one site at a time (bounded memory)."""
    start = now - 24 * HOUR
    step = interval_s * 1000
    for s in range(sites):
        site = f"site-{s:03d}"
        pts: list[Any] = []
        down = s == 7
        last_gw = now - (900_000 if down else 4_000)
        for t in range(start, last_gw + 1, 30_000):
            pts += cp.gateway(site, f"gw-{s:03d}", t, online=devices,
                              oldest_s=900.0 if s == 11 else 0.0)
        yield pts
        for d in range(devices):
            pts = []
            dev = f"air-{d:04d}"
            silent = d % 17 == 5
            stop = now - 3 * HOUR if silent else now - 20_000
            pts += cp.station(site, dev, start, lat=50.80 + s * 0.003 + d * 0.0001,
                              lon=4.30 + (d % 10) * 0.0002, room=f"{d // 10}.{d % 10:02d}")
            for t in range(start + (d * 997) % step, stop, step):
                pts += cp.reading(site, dev, "scd41", "air",
                                  {"co2": 420.0 + (t // step) % 300, "temperature": 21.5}, t)
            for t in range(start, stop, 1_800_000):
                pts += cp.device(site, dev, t, interval_s=float(interval_s))
            if d % 23 == 3:
                pts += cp.device(site, dev, now - 60_000, online=0.0)
            else:
                pts += cp.device(site, dev, stop, interval_s=float(interval_s))
            for h in range(start // HOUR * HOUR, now, HOUR):
                pts += cp.delivery(site, dev, h, 3600 // interval_s - (1 if d % 9 == 0 else 0),
                                   missing=1 if d % 9 == 0 else 0)
            yield pts


def fill(path: Path, sites: int, devices: int, interval_s: int) -> dict[str, Any]:
    """Write the city into ``path`` through the writer's own row mapping."""
    t0 = time.monotonic()
    con = sqlite3.connect(path)
    con.executescript(SCHEMA)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=OFF")
    rows = texts = 0
    now = int(time.time() * 1000)
    for pts in _points(sites, devices, interval_s, now):
        for i in range(0, len(pts), BATCH):
            r, t = rows_of(cp.encode_lines(pts[i:i + BATCH]))
            con.executemany("INSERT OR REPLACE INTO readings VALUES (?,?,?,?,?,?,?)", r)
            con.executemany("INSERT OR REPLACE INTO text_fields VALUES (?,?,?,?,?,?,?)", t)
            rows, texts = rows + len(r), texts + len(t)
        con.commit()
    con.execute("ANALYZE")
    con.commit()
    con.close()
    return {"rows": rows, "text_rows": texts, "fill_s": round(time.monotonic() - t0, 1),
            "bytes": path.stat().st_size}


def _time(client: Any, reader: Any, url: str) -> tuple[float, int, int]:
    q0 = reader.queries()
    t0 = time.perf_counter()
    r = client.get(url)
    dt = time.perf_counter() - t0
    assert r.status_code == 200, (url, r.status_code)
    return dt, reader.queries() - q0, len(r.content)


def _refresh_cost(city: Any, reader: Any, site: str, views: int) -> dict[str, Any]:
    """Each question the cache asks the store in the background: seconds, queries."""
    out: dict[str, Any] = {}
    for name, fn in (("snapshot", city._read_snapshot), ("delivery_24h", city._read_delivery),
                     ("site_latest_values", lambda: reader.latest_values((site,)))):
        times, queries = [], 0
        for _ in range(views):
            q0, t0 = reader.queries(), time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
            queries = reader.queries() - q0
        out[name] = {"s": round(statistics.median(times), 3), "queries": queries}
    return out


def measure(store: Path, views: int, site: str) -> dict[str, Any]:
    from gateway.console.city_app import build_city_app
    from gateway.console.city_model import City
    from gateway.stores.readers import make_centre_reader

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient

    cfg = parse_config({"console": {"scope": "city"},
                        "store": {"kind": "sqlite", "path": str(store)}},
                       store.parent, env={}, need_site=False)
    reader = make_centre_reader(cfg)
    city = City(cfg, reader)
    out: dict[str, Any] = {"refresh": _refresh_cost(city, reader, site, views)}
    pages = {"city": "/", "site": f"/sites/{site}", "site_filtered": f"/sites/{site}?state=silent",
             "device": f"/sites/{site}/devices/air-0001",
             "api_sites": "/api/sites", "api_site_devices": f"/api/sites/{site}/devices",
             "stations_geojson": "/api/stations.geojson", "map": "/map"}
    with TestClient(build_city_app(cfg, reader, city=city)) as c:
        first = _time(c, reader, "/")  # waits for the first snapshot
        out["first_view"] = {"s": round(first[0], 3), "queries": first[1]}
        for name, url in pages.items():
            _time(c, reader, url)  # this page's own questions answered once
            warm = [_time(c, reader, url) for _ in range(views)]
            stale = []
            for _ in range(views):  # the cache expired: the view shows the last answer
                city.expire()
                stale.append(_time(c, reader, url))
                time.sleep(0.05)
                wait_idle(city)
            out[name] = {
                "url": url, "bytes": warm[-1][2],
                "warm_s": round(statistics.median(w[0] for w in warm), 4),
                "warm_queries": max(w[1] for w in warm),
                "expired_s": round(statistics.median(r[0] for r in stale), 3)}
    return out


def wait_idle(city: Any, timeout: float = 120.0) -> None:
    """Until the background refreshes the last view started have ended."""
    end = time.monotonic() + timeout
    while time.monotonic() < end and any(not t.done() for t in city._tasks.values()):
        time.sleep(0.05)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.city_console", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sites", type=int, default=100)
    ap.add_argument("--devices", type=int, default=50)
    ap.add_argument("--interval-s", type=int, default=300)
    ap.add_argument("--views", type=int, default=5)
    ap.add_argument("--store", type=Path, help="keep the filled store here (reused if there)")
    args = ap.parse_args(argv)
    tmp = None
    if args.store is None:
        tmp = tempfile.TemporaryDirectory(prefix="city-bench-")
        args.store = Path(tmp.name) / "centre.sqlite"
    doc: dict[str, Any] = {"sites": args.sites, "devices_per_site": args.devices,
                           "interval_s": args.interval_s, "python": sys.version.split()[0],
                           "machine": platform.machine(), "cpus": os.cpu_count()}
    if not args.store.exists():
        doc["fill"] = fill(args.store, args.sites, args.devices, args.interval_s)
    doc["store_bytes"] = args.store.stat().st_size
    doc["pages"] = measure(args.store, args.views, "site-003")
    print(json.dumps(doc, indent=1))
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
