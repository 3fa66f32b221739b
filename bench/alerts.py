"""One alerts evaluation cycle over a city: store queries, seconds, RSS.

``python -m bench.alerts [--devices 5000] [--sites 50] [--hours 2]``

1. Writes a city into an embedded (SQLite) store through the store's own
   writer: ``--sites`` sites with a gateway each (health every 30 s), ``--devices``
   devices spread over them, ``--hours`` of readings (co2 + temperature every
   minute), a status every 5 minutes, station metadata, the last complete UTC
   day's delivery counts (24 rows per device), and trouble for the rules to find
   (about 1% silent, offline, rolled-back updates, poor capture, CO2 above a
   threshold; two gateways with a backlog, one down).
2. In a fresh process (so the RSS is the evaluator's alone): opens the centre
   reader, runs one cold cycle (reads the day's delivery and the update history)
   and five warm ones; prints the store queries, seconds and RSS of each.

Prints one JSON document; docs/benchmarks.md has the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

MIN = 60_000
DAY = 86_400_000


def rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def config(tmp: Path) -> Path:
    path = tmp / "centre.toml"
    path.write_text(f'[gateway]\ndata_dir = "{tmp / "var"}"\n'
                    f'[store]\nkind = "sqlite"\npath = "{tmp / "store.sqlite"}"\n'
                    '[alerts]\ninterval_s = 30\n'
                    '[[alerts.threshold]]\nname = "Co2High"\nquantity = "co2"\nabove = 1500.0\n'
                    'for_s = 600\nhysteresis = 100.0\n', encoding="utf-8")
    return path


def fill(path: Path, devices: int, sites: int, hours: int) -> dict[str, Any]:
    from tests.alerts.scene import Scene, load

    cfg = load(path)
    t0 = time.monotonic()
    now = int(time.time() * 1000)
    start = now - hours * 3_600_000
    day = now // DAY * DAY - DAY
    per_site = devices // sites
    n_points = 0
    for s in range(sites):
        site = f"site-{s:03d}"
        sc = Scene()
        down = s == sites - 1
        end = now - 600_000 if down else now - 5_000
        for t in range(start, end, 30_000):
            sc.gateway(site, t, buffer_oldest_s=900.0 if s in (0, 1) else 0.0)
        for i in range(per_site):
            dev = f"air-{i:04d}"
            sc.station(site, dev, start - DAY)
            trouble = (s * per_site + i) % 100  # about 1% each
            last = now - 1_200_000 if trouble == 1 else now - 900_000 if trouble == 2 else now
            for t in range(start + i * 7 % MIN, last, MIN):
                co2 = 1700.0 if trouble == 5 else 600.0 + (t // MIN % 50)
                sc.add("air", {"site": site, "device": dev, "sensor": "scd41"},
                       {"co2": co2, "temperature": 21.0}, t)
            for t in range(start, last, 5 * MIN):
                extra: dict[str, float | str] = {}
                if trouble == 3 and t > now - 1_200_000:  # rolled back 20 minutes ago
                    extra = {"update_state": "rolled_back", "update_version": "1.5.0"}
                sc.status(site, dev, t, **extra)
            if trouble == 2:
                sc.last_will(site, dev, now - 900_000)
            for h in range(24):
                sc.delivery(site, dev, day + h * 3_600_000, accepted=40 if trouble == 4 else 60,
                            missing=20 if trouble == 4 else 0)
        n_points += len(sc.points)
        sc.write(cfg)
    size = (path.parent / "store.sqlite").stat().st_size
    return {"now_ms": now, "devices": sites * per_site, "sites": sites, "hours": hours,
            "points": n_points,
            "store_mb": round(size / 1e6, 1), "fill_s": round(time.monotonic() - t0, 1)}


def measure(path: Path, cycles: int, now_ms: int) -> dict[str, Any]:
    """One cold and ``cycles`` warm cycles in this (fresh) process, at the city's ``now``
    (filling takes minutes: the gateways would look down at the real now)."""
    from gateway.alerts.engine import Engine
    from gateway.alerts.state import AlertState
    from gateway.stores.readers import make_centre_reader
    from protocols.config import load_config

    cfg = load_config(path, need_site=False)
    base = rss_mb()
    reader = make_centre_reader(cfg)
    eng = Engine(reader, cfg.alerts, AlertState())
    runs = []
    try:
        for k in range(cycles + 1):
            t = time.perf_counter()
            res = eng.cycle(now_ms + k)  # the same instant: a fixed city
            runs.append({"seconds": round(time.perf_counter() - t, 3), "queries": res.queries,
                         "firing": len(res.firing), "rss_mb": round(rss_mb(), 1)})
    finally:
        reader.close()
    names: dict[str, int] = {}
    for a in eng.state.active.values():
        names[a.labels["alertname"]] = names.get(a.labels["alertname"], 0) + 1
    warm = runs[1:]
    return {"rss_before_mb": round(base, 1),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "cold": runs[0],
            "warm_median_s": statistics.median(r["seconds"] for r in warm),
            "warm_queries": sorted({r["queries"] for r in warm}),
            "warm_rss_mb": warm[-1]["rss_mb"] if warm else None,
            "firing_by_name": dict(sorted(names.items()))}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.alerts", description=__doc__.split("\n")[0])
    ap.add_argument("--devices", type=int, default=5000)
    ap.add_argument("--sites", type=int, default=50)
    ap.add_argument("--hours", type=int, default=2)
    ap.add_argument("--cycles", type=int, default=5, help="warm cycles after the cold one")
    ap.add_argument("--keep", metavar="DIR", help="fill DIR (or reuse the city already there)")
    ap.add_argument("--measure", metavar="CONFIG", help=argparse.SUPPRESS)
    ap.add_argument("--now", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.measure:
        print(json.dumps(measure(Path(args.measure), args.cycles, args.now)))
        return 0
    with tempfile.TemporaryDirectory(prefix="bench-alerts-") as tmp:
        base = Path(args.keep or tmp)
        base.mkdir(parents=True, exist_ok=True)
        path = config(base)
        out: dict[str, Any] = {"machine": {"cpu": platform.processor() or platform.machine(),
                                           "cores": os.cpu_count(),
                                           "python": platform.python_version()}}
        city = base / "city.json"
        if args.keep and city.exists():
            out["city"] = json.loads(city.read_text())
        else:
            out["city"] = fill(path, args.devices, args.sites, args.hours)
            city.write_text(json.dumps(out["city"]))
        res = subprocess.run([sys.executable, "-m", "bench.alerts", "--measure", str(path),
                              "--cycles", str(args.cycles), "--now", str(out["city"]["now_ms"])],
                             capture_output=True, text=True, check=True, timeout=3600)
        out["cycle"] = json.loads(res.stdout)
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
