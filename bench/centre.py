"""The centre's reader at city scale: queries and milliseconds per reader call.

``python -m bench.centre [--sites 100] [--devices 50] [--hours 24] [--interval 60]
[--store sqlite|victoria|influxd ...] [--repeat 3]``

1. Fills a store with ``--hours`` of a city: ``--sites`` x ``--devices`` air
   devices (co2, temperature, humidity every ``--interval`` s), one ``device``
   point (status, with its ``device_info``) per device and hour, ``gateway``
   health every 30 s per site (with ``gateway_info``), one ``station`` point per
   device, ``delivery`` per device and hour, a few ``rejections``. SQLite is
   filled with the writer's own rows (``sqlite.rows_of``); the HTTP stores
   through their InfluxDB write endpoint.
2. Calls every :class:`~gateway.stores.centre.CentreReader` method (cold, then
   ``--repeat`` warm calls) and prints per call: store queries, rows answered,
   cold and median warm milliseconds. The query count must not depend on the
   number of devices: that is the point of the table.

Prints one JSON document on stdout (progress on stderr); docs/benchmarks.md has
the figures.
"""

from __future__ import annotations

import argparse
import json
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from gateway.stores.centre import CentreReader
from gateway.stores.readers import make_centre_reader
from gateway.stores.sqlite import SCHEMA, rows_of
from protocols.config import parse_config
from tests.servers import Influxd, VictoriaMetrics

HOUR = 3_600_000


def city_lines(sites: int, devices: int, hours: int, interval_s: int, now_ms: int
               ) -> Iterator[list[str]]:
    """Line protocol of the city, one device (or one gateway) at a time."""
    start = now_ms // HOUR * HOUR - hours * HOUR
    step = interval_s * 1000
    for s in range(sites):
        site = f"site-{s:03d}"
        for d in range(devices):
            dev = f"air-{d:03d}"
            tags = f"device={dev},site={site}"
            lines = [f"air,{tags},sensor=scd41 co2={400 + (k + d) % 600},"
                     f"temperature={20 + (k % 50) / 10},humidity={40 + (k % 30)} "
                     f"{start + k * step + d * 17}"
                     for k in range(hours * HOUR // step)]
            for h in range(hours):
                t = start + h * HOUR + 1234
                lines.append(f'device,{tags} online=1,rssi=-{50 + d % 30},heap_free=120000,'
                             f'uptime={h * 3600 + 60},interval_s={interval_s},boot=3,'
                             f'dropped=0,sensor_errors=0,fw="1.2.0",board="pico_w" {t}')
                lines.append(f"device_info,{tags},board=pico_w,fw=1.2.0 v=1 {t}")
                lines.append(f"delivery,{tags} received=60,accepted=59,duplicates=0,"
                             f"rejected=1,missing=0 {start + h * HOUR}")
            lines.append(f'station,{tags} lat={41 + s / 100},lon={16 + d / 100},deployment=1,'
                         f'retired=0,board="pico_w",sensors="scd41",room="r{d}",zone="z",'
                         f'note="" {start - HOUR}')
            lines.append(f"station_info,{tags},board=pico_w,room=r{d},sensors=scd41,zone=z "
                         f"v=1 {start - HOUR}")
            if d % 10 == 0:
                lines.append(f"rejections,{tags},reason=out_of_range count=2 {start}")
            yield lines
        gtags = f"gateway=gw-{s:03d},site={site}"
        yield [line for k in range(hours * 120)
               for line in (f'gateway,{gtags} up=1,broker_connected=1,buffer_points=0,'
                            f'buffer_oldest_s=0,disk_free_bytes=5e9,devices_online={devices},'
                            f'uptime_s={k * 30},interval_s=30,version="0.9.0" '
                            f'{start + k * 30_000}',
                            f"gateway_info,{gtags},version=0.9.0 v=1 {start + k * 30_000}")]


def fill_sqlite(path: Path, batches: Iterator[list[str]]) -> int:
    con = sqlite3.connect(path)
    con.executescript(SCHEMA)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=OFF")
    n = 0
    for lines in batches:
        rows, texts = rows_of("\n".join(lines).encode())
        con.executemany("INSERT OR REPLACE INTO readings VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
        con.executemany("INSERT OR REPLACE INTO text_fields VALUES (?, ?, ?, ?, ?, ?, ?)",
                        texts)
        n += len(lines)
        con.commit()
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    return n


def fill_http(url: str, batches: Iterator[list[str]]) -> int:
    n = 0
    buf: list[str] = []

    def post() -> None:
        req = urllib.request.Request(url, data="\n".join(buf).encode(), method="POST")
        with urllib.request.urlopen(req, timeout=300):
            pass
        buf.clear()
    for lines in batches:
        buf += lines
        n += len(lines)
        if len(buf) >= 50_000:
            post()
    if buf:
        post()
    return n


def calls(r: CentreReader, now_ms: int) -> dict[str, Callable[[], int]]:
    """Each reader call of the bench -> how many rows it answered."""
    hour = now_ms // HOUR * HOUR
    return {
        "sites": lambda: len(r.sites()),
        "gateways": lambda: len(r.gateways()),
        "devices": lambda: len(r.devices()),
        "stations": lambda: len(r.stations()),
        "station_history": lambda: len(r.station_history()),
        "latest_reading_times": lambda: len(r.latest_reading_times()),
        "latest_values": lambda: len(r.latest_values()),
        "latest_values (1 site)": lambda: len(r.latest_values(["site-000"])),
        "device_points (1 h)": lambda: len(r.device_points(hour - HOUR, hour)),
        "readings (1 site, 1 h)": lambda: sum(
            1 for _ in r.readings(hour - HOUR, hour, sites=["site-000"])),
        "readings (city, 10 min)": lambda: sum(1 for _ in r.readings(hour - HOUR,
                                                                     hour - 50 * 60_000)),
        "series (24 h, 10 min step)": lambda: len(r.series(
            "site-000", "air-000", "air", "co2", hour - 24 * HOUR, hour, 600_000)),
        "delivery (24 h)": lambda: len(r.delivery(hour - 24 * HOUR, hour)),
        "rejections (24 h)": lambda: len(r.rejections(hour - 25 * HOUR, hour)),
    }


def measure(r: CentreReader, now_ms: int, repeat: int) -> list[dict[str, Any]]:
    out = []
    for name, call in calls(r, now_ms).items():
        q0 = r.queries()
        t0 = time.perf_counter()
        rows = call()
        cold = (time.perf_counter() - t0) * 1000
        queries = r.queries() - q0
        warm = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            call()
            warm.append((time.perf_counter() - t0) * 1000)
        out.append({"call": name, "queries": queries, "rows": rows, "cold_ms": round(cold, 1),
                    "warm_ms": round(statistics.median(warm), 1) if warm else None})
        print(f"  {name:28} {queries:3} queries {rows:9} rows {cold:9.1f} ms cold "
              f"{out[-1]['warm_ms']} ms warm", file=sys.stderr)
    return out


def run_store(kind: str, work: Path, args: argparse.Namespace, now_ms: int) -> dict[str, Any]:
    batches = city_lines(args.sites, args.devices, args.hours, args.interval, now_ms)
    server: Influxd | VictoriaMetrics | None = None
    t0 = time.monotonic()
    if kind == "sqlite":
        store: dict[str, Any] = {"kind": "sqlite", "path": str(work / "city.sqlite")}
        lines = fill_sqlite(work / "city.sqlite", batches)
    elif kind == "victoria":
        server = VictoriaMetrics(work / "vm")
        server.start()
        store = {"kind": "influxdb2", "url": server.url, "flavour": "victoriametrics"}
        lines = fill_http(f"{server.url}/write", batches)
        server.flush()
    else:
        server = Influxd(work / "influxd")
        server.start()
        server.query('CREATE DATABASE "city"')
        store = {"kind": "influxdb1", "url": server.url, "database": "city"}
        lines = fill_http(f"{server.url}/write?db=city&precision=ms", batches)
    fill_s = time.monotonic() - t0
    print(f"{kind}: {lines:,} points written in {fill_s:.0f} s", file=sys.stderr)
    try:
        cfg = parse_config({"store": store}, work, env={}, need_site=False)
        reader = make_centre_reader(cfg)
        try:
            results = measure(reader, now_ms, args.repeat)
        finally:
            reader.close()
    finally:
        if server is not None:
            server.stop()
    size = sum(p.stat().st_size for p in work.rglob("*") if p.is_file())
    return {"store": kind, "points": lines, "fill_s": round(fill_s, 1),
            "bytes_on_disk": size, "calls": results}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.centre", description=__doc__.split(
        "\n\n")[0])
    ap.add_argument("--sites", type=int, default=100)
    ap.add_argument("--devices", type=int, default=50, help="per site")
    ap.add_argument("--hours", type=int, default=24)
    ap.add_argument("--interval", type=int, default=60, help="reading interval (s)")
    ap.add_argument("--store", action="append", choices=["sqlite", "victoria", "influxd"])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--dir", type=Path, default=None, help="work folder (default: a temp)")
    args = ap.parse_args(argv)
    now_ms = int(time.time() * 1000)
    out: dict[str, Any] = {
        "machine": {"cpus": __import__("os").cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform(), "sqlite": sqlite3.sqlite_version},
        "city": {"sites": args.sites, "devices_per_site": args.devices, "hours": args.hours,
                 "interval_s": args.interval}, "stores": []}
    with tempfile.TemporaryDirectory(prefix="bench-centre-", dir=args.dir) as tmp:
        for kind in args.store or ["sqlite"]:
            work = Path(tmp) / kind
            work.mkdir()
            out["stores"].append(run_store(kind, work, args, now_ms))
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
