"""SensorThings at scale: a million-observation Datastream paged end to end, and the
common queries' latency over a big SQLite store.

``python -m bench.sensorthings [--readings 10000000] [--dense 1000000] [--devices 100]
[--keep DIR]``

1. Fills an embedded (SQLite) store, in the gateway writer's schema: one dense
   Datastream (``bench.dense.sht4x.temperature``, one reading a second, ending
   now) of ``--dense`` observations, and ``--devices`` air devices (scd41: co2,
   temperature, humidity every minute) making up ``--readings`` in all; plus a
   ``station`` point per device through the store's own writer.
2. Starts ``livinglab sensorthings`` on it and pages the dense Datastream with
   ``$top=1000`` from the first nextLink to the last, checking every
   observation's time and value against what was written (none lost, none
   repeated) and sampling the server's RSS every 50 pages.
3. Times, ``--samples`` times each (p50 / p99, ms): the latest observation of
   every Datastream of a Thing (``$expand=Observations($top=1;$orderby=
   phenomenonTime desc)``), one day of one Datastream (a minute series: 1,440
   observations, two pages), and a filter on ``result`` (first page).

Prints one JSON document; docs/benchmarks.md has the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from gateway.stores import make_store
from gateway.stores.sqlite import SCHEMA
from protocols import encode_lines
from protocols.config import parse_config
from protocols.lineprotocol import make_point

SITE = "bench"
DENSE = f"{SITE}.dense.sht4x.temperature"
MIN_MS = 60_000


def dense_value(i: int) -> float:
    return 15.0 + (i % 1000) / 100


def fill(path: Path, readings: int, dense: int, devices: int, now_ms: int) -> dict[str, Any]:
    t0 = time.monotonic()
    con = sqlite3.connect(path)
    con.executescript(SCHEMA)
    con.execute("PRAGMA synchronous=OFF")
    con.execute("PRAGMA journal_mode=WAL")
    first = now_ms - dense * 1000

    def dense_rows() -> Iterator[tuple[Any, ...]]:
        for i in range(dense):
            yield ("air", SITE, "dense", "sht4x", "temperature", dense_value(i), first + i * 1000)
    con.executemany("INSERT INTO readings VALUES (?,?,?,?,?,?,?)", dense_rows())
    per_series = max((readings - dense) // (3 * devices), 1)
    start = now_ms - per_series * MIN_MS

    def device_rows(n: int) -> Iterator[tuple[Any, ...]]:
        dev = f"air-{n:04d}"
        for k in range(per_series):
            t = start + k * MIN_MS
            yield ("air", SITE, dev, "scd41", "co2", 400.0 + (k * 7 + n) % 800, t)
            yield ("air", SITE, dev, "scd41", "temperature", 18 + ((k + n) % 80) / 10, t)
            yield ("air", SITE, dev, "scd41", "humidity", 30 + ((k + n) % 400) / 10, t)
    for n in range(devices):
        con.executemany("INSERT INTO readings VALUES (?,?,?,?,?,?,?)", device_rows(n))
        con.commit()
    con.commit()
    con.close()
    rows = dense + per_series * 3 * devices
    return {"readings": rows, "dense": dense, "devices": devices, "per_series": per_series,
            "series_days": round(per_series / 1440, 1), "fill_s": round(time.monotonic() - t0, 1),
            "db_bytes": path.stat().st_size, "start_ms": start}


def stations(cfg_store: Any, devices: int, now_ms: int) -> None:
    pts = []
    for n in range(devices + 1):
        dev = f"air-{n:04d}" if n < devices else "dense"
        sensors = "scd41" if n < devices else "sht4x"
        fields: dict[str, float | str] = {"lat": 41.1 + n / 1000, "lon": 16.8, "deployment": 1.0,
                                          "retired": 0.0, "board": "pico_w", "sensors": sensors,
                                          "room": f"room {n}", "zone": "", "note": ""}
        tags = {"site": SITE, "device": dev}
        pts.append(make_point("station", tags, fields, now_ms - 40 * 86_400_000))
        strings = {k: v for k, v in fields.items() if isinstance(v, str) and v}
        pts.append(make_point("station_info", {**tags, **strings}, {"v": 1.0},
                              now_ms - 40 * 86_400_000))

    async def go() -> None:
        store = make_store(cfg_store)
        try:
            await store.ensure_ready()
            await store.write(encode_lines(pts), len(pts))
        finally:
            await store.aclose()
    asyncio.run(go())


def rss_kb(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of ``pid`` in kB."""
    got = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        k, _, v = line.partition(":")
        if k in ("VmRSS", "VmHWM"):
            got[k] = int(v.split()[0])
    return got["VmRSS"], got["VmHWM"]


def page_dense(client: httpx.Client, url: str, pid: int, first_ms: int, n: int
               ) -> dict[str, Any]:
    t0 = time.monotonic()
    link: str | None = f"{url}/Datastreams('{DENSE}')/Observations?$top=1000"
    seen = pages = 0
    rss: list[int] = []
    page_ms: list[float] = []
    while link:
        t = time.perf_counter()
        r = client.get(link)
        page_ms.append((time.perf_counter() - t) * 1000)
        assert r.status_code == 200, r.text
        body = r.json()
        for o in body["value"]:
            i = seen
            want_id = f"{DENSE}.{first_ms + i * 1000}"
            if o["@iot.id"] != want_id or o["result"] != dense_value(i):
                raise SystemExit(f"observation {i}: {o['@iot.id']} {o['result']} "
                                 f"!= {want_id} {dense_value(i)}")
            seen += 1
        link = body.get("@iot.nextLink")
        pages += 1
        if pages % 50 == 1:
            rss.append(rss_kb(pid)[0])
    if seen != n:
        raise SystemExit(f"paged {seen} observations, wrote {n}")
    return {"observations": seen, "pages": pages, "s": round(time.monotonic() - t0, 1),
            "page_p50_ms": round(statistics.median(page_ms), 1),
            "page_p99_ms": round(pct(page_ms, 99), 1),
            "rss_kb_samples": rss[::max(len(rss) // 10, 1)],
            "rss_first_kb": rss[0], "rss_last_kb": rss[-1], "peak_rss_kb": rss_kb(pid)[1]}


def pct(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def timed(client: httpx.Client, urls: list[str], samples: int) -> dict[str, Any]:
    """Each URL, and for a time window every nextLink after it (the whole window)."""
    ms: list[float] = []
    counts: list[int] = []
    for k in range(samples):
        t = time.perf_counter()
        link: str | None = urls[k % len(urls)]
        whole = "phenomenonTime%20ge" in link
        n = 0
        while link:
            r = client.get(link)
            assert r.status_code == 200, r.text
            body = r.json()
            n += len(body["value"])
            link = body.get("@iot.nextLink") if whole else None
        ms.append((time.perf_counter() - t) * 1000)
        counts.append(n)
    return {"p50_ms": round(statistics.median(ms), 1), "p99_ms": round(pct(ms, 99), 1),
            "max_ms": round(max(ms), 1), "samples": samples,
            "entities_min": min(counts), "entities_max": max(counts)}


def iso(ms: int) -> str:
    import datetime as dt
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.sensorthings")
    ap.add_argument("--readings", type=int, default=10_000_000)
    ap.add_argument("--dense", type=int, default=1_000_000)
    ap.add_argument("--devices", type=int, default=100)
    ap.add_argument("--samples", type=int, default=50)
    ap.add_argument("--keep", type=Path, help="fill (or reuse) the store in this directory")
    args = ap.parse_args(argv)
    tmp = tempfile.TemporaryDirectory() if args.keep is None else None
    base = args.keep or Path(tmp.name)  # type: ignore[union-attr]
    base.mkdir(parents=True, exist_ok=True)
    db = base / "bench.sqlite"
    meta = base / "bench.json"
    out: dict[str, Any] = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version()}}
    store = {"kind": "sqlite", "path": str(db)}
    if not db.exists():
        now_ms = int(time.time() * 1000) // 1000 * 1000
        out["store"] = fill(db, args.readings, args.dense, args.devices, now_ms)
        out["store"]["now_ms"] = now_ms
        stations(parse_config({"store": store}, base, env={}, need_site=False).store,
                 args.devices, now_ms)
        meta.write_text(json.dumps(out["store"]))
    else:
        out["store"] = json.loads(meta.read_text())
    st = out["store"]
    print(json.dumps({"filled": st}), file=sys.stderr, flush=True)
    config = base / "sta.toml"
    config.write_text(f'[store]\nkind = "sqlite"\npath = "{db}"\n')
    proc = subprocess.Popen([sys.executable, "-m", "gateway.cli", "sensorthings", "--config",
                             str(config), "--port", "0"], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().split()[1]
        with httpx.Client(timeout=300) as client:
            out["startup_rss_kb"] = rss_kb(proc.pid)[0]
            first = st["now_ms"] - st["dense"] * 1000
            out["page_1m"] = page_dense(client, url, proc.pid, first, st["dense"])
            print(json.dumps({"page_1m": out["page_1m"]}), file=sys.stderr, flush=True)
            things = [f"{url}/Things('{SITE}.air-{n:04d}')/Datastreams?$expand=Observations("
                      "$top=1;$orderby=phenomenonTime%20desc)" for n in range(args.devices)]
            out["latest_per_datastream_of_thing"] = timed(client, things, args.samples)
            day0 = st["start_ms"] + 86_400_000
            days = [f"{url}/Datastreams('{SITE}.air-{n:04d}.scd41.co2')/Observations?$top=1000"
                    f"&$filter=phenomenonTime%20ge%20{iso(day0 + (n % 5) * 86_400_000)}%20and%20"
                    f"phenomenonTime%20lt%20{iso(day0 + (n % 5 + 1) * 86_400_000)}"
                    for n in range(args.devices)]
            out["one_day_of_one_datastream"] = timed(client, days, args.samples)
            res = [f"{url}/Datastreams('{SITE}.air-{n:04d}.scd41.co2')/Observations?$top=100"
                   f"&$filter=result%20gt%201150" for n in range(args.devices)]
            out["filter_on_result"] = timed(client, res, args.samples)
            out["peak_rss_kb"] = rss_kb(proc.pid)[1]
    finally:
        proc.terminate()
        proc.wait(10)
        if tmp is not None:
            tmp.cleanup()
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
