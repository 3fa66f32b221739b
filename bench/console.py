"""The console under load: page timings over a 500-device store, and ingest with it open.

``python -m bench.console [--devices 500] [--per-hour 60] [--messages 20000]``

1. Fills an embedded (SQLite) store with 24 h of readings for ``--devices``
   air devices (co2, temperature, humidity every minute by default: 2.16 M
   rows for 500), plus the gateway's last-seen table and 25 hours of delivery
   accounting (what the fleet page's delivery column reads) for them.
2. Starts Mosquitto, ``livinglab gateway`` on that store and ``livinglab
   console``; times the fleet page, the 24 h device page and the readings the
   device page's charts fetch (time to first byte, payload size; cold = first
   request, warm = median of the next five).
3. Publishes ``--messages`` telemetry messages and measures the gateway's
   ingest rate (accepted message to store acknowledgement) three times: without
   the console being used, with two clients reloading the fleet and device pages
   in a loop plus an open SSE stream, and without again.

Prints one JSON document; docs/benchmarks.md has the figures.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.procs import Consumer, child_env, publish
from gateway.accounting.delivery import create_tables, hour_of
from gateway.accounting.lastseen import LastSeen, Sighting, lastseen_path
from gateway.buffer.core import DurableBuffer
from gateway.stores.sqlite import SCHEMA
from tests.servers import Mosquitto, free_port, running, stop_pid, wait_for

SITE = "bdnc-lab"


def fill_store(path: Path, data_dir: Path, devices: int, per_hour: int) -> dict[str, Any]:
    t0 = time.monotonic()
    now_ms = int(time.time() * 1000)
    step = 3_600_000 // per_hour
    con = sqlite3.connect(path)
    con.executescript(SCHEMA)
    con.execute("PRAGMA synchronous=OFF")
    ids = [f"air-{i:04d}" for i in range(1, devices + 1)]
    rows = 0
    for n, dev in enumerate(ids):
        batch = []
        for k in range(24 * per_hour):
            t = now_ms - 86_400_000 + k * step
            batch += [("air", SITE, dev, "scd41", "co2", 400.0 + (k + n) % 800, t),
                      ("air", SITE, dev, "scd41", "temperature", 18 + ((k + n) % 80) / 10, t),
                      ("air", SITE, dev, "scd41", "humidity", 30 + ((k + n) % 400) / 10, t)]
        con.executemany("INSERT OR REPLACE INTO readings VALUES (?,?,?,?,?,?,?)", batch)
        rows += len(batch)
    con.commit()
    con.close()
    seen = LastSeen(lastseen_path(data_dir))
    now = time.time()
    seen.update([Sighting(d, now - 30, "status", "online", {"state": "online", "fw": "1.0.0"})
                 for d in ids])
    seen.close()
    buffer = data_dir / "buffer.sqlite"
    DurableBuffer(buffer, 64 << 20).close()  # the gateway's own file and schema
    con = sqlite3.connect(buffer)
    create_tables(con)
    first = hour_of(now) - 24 * 3600
    con.executemany("INSERT INTO delivery_hours VALUES (?,?,?,?,?,?,?,0)", [
        (d, first + h * 3600, per_hour, per_hour - (n + h) % 2, 0, (n + h) % 2, (n + h) % 3)
        for n, d in enumerate(ids) for h in range(25)])
    con.commit()
    con.close()
    return {"rows": rows, "devices": devices, "fill_s": round(time.monotonic() - t0, 1)}


def get(port: int, path: str) -> tuple[float, float, int, int]:
    """(time to first byte, total time, bytes on the wire (gzip), status) of one GET."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    t0 = time.perf_counter()
    conn.request("GET", path, headers={"Accept": "text/html", "Accept-Encoding": "gzip"})
    resp = conn.getresponse()
    first = resp.read(1)
    ttfb = time.perf_counter() - t0
    body = first + resp.read()
    total = time.perf_counter() - t0
    conn.close()
    return ttfb, total, len(body), resp.status


def timing(port: int, path: str, warm: int = 5) -> dict[str, Any]:
    cold = get(port, path)
    runs = [get(port, path) for _ in range(warm)]
    return {"path": path, "status": cold[3], "cold_ttfb_ms": round(cold[0] * 1000, 1),
            "warm_ttfb_ms": round(statistics.median(r[0] for r in runs) * 1000, 1),
            "warm_total_ms": round(statistics.median(r[1] for r in runs) * 1000, 1),
            "bytes": runs[-1][2]}


class Browsers(threading.Thread):
    """Clients reloading the fleet and a device page (with its charts) until stopped."""

    def __init__(self, port: int, quantities: list[str], period_s: float) -> None:
        super().__init__(daemon=True)
        self.port, self.quantities, self.period_s = port, quantities, period_s
        self.stop_flag = threading.Event()
        self.requests = 0

    def run(self) -> None:
        sse = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        sse.request("GET", "/api/events")
        resp = sse.getresponse()
        while not self.stop_flag.is_set():
            t0 = time.monotonic()
            get(self.port, "/")
            get(self.port, "/devices/air-0001?window=24h")
            for q in self.quantities:
                get(self.port, f"/api/devices/air-0001/readings?quantity={q}&window=24h")
            self.requests += 2 + len(self.quantities)
            resp.read1(65536)  # keep the SSE stream drained, as a browser would
            self.stop_flag.wait(max(self.period_s - (time.monotonic() - t0), 0))
        sse.close()


def ingest(gw: Consumer, port: int, tag: str, messages: int) -> dict[str, Any]:
    base = gw.metric("livinglab_points_forwarded_total") or 0.0
    pub = publish(port, tag, messages, publishers=1, devices=100)
    t0 = float(pub["t_first_publish"])  # type: ignore[arg-type]
    last_v, last_t = base, time.time()
    end = time.time() + 300
    while time.time() < end:  # until the count stops moving for 3 s
        v = gw.metric("livinglab_points_forwarded_total") or 0.0
        if v != last_v:
            last_v, last_t = v, time.time()
        elif time.time() - last_t > 3:
            break
        time.sleep(0.1)
    points = last_v - base
    span = last_t - t0
    return {"messages": messages, "points": int(points), "span_s": round(span, 2),
            "msg_per_s": round(messages / span, 1), "points_per_s": round(points / span, 1),
            "publisher_msg_per_s": pub.get("pub_msg_per_s")}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.console")
    ap.add_argument("--devices", type=int, default=500)
    ap.add_argument("--per-hour", type=int, default=60)
    ap.add_argument("--messages", type=int, default=20_000)
    ap.add_argument("--keep", action="store_true", help="keep the run directory")
    a = ap.parse_args(argv)
    run = Path(tempfile.mkdtemp(prefix="bench-console-"))
    data_dir = run / "gateway-data"
    data_dir.mkdir()
    out: dict[str, Any] = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                       "note": "shared, noisy 2-core VM"}}
    out["store"] = fill_store(run / "readings.sqlite", data_dir, a.devices, a.per_hour)
    print(json.dumps({"filled": out["store"]}), file=sys.stderr, flush=True)
    with running(Mosquitto(run / "mosquitto")) as broker:
        health, cport = free_port(), free_port()
        cfg = run / "gw.toml"
        cfg.write_text(f'site = "{SITE}"\n[gateway]\nid = "gw-bench"\ndata_dir = "{data_dir}"\n'
                       f"health_port = {health}\n[mqtt]\nport = {broker.port}\n"
                       f'[store]\nkind = "sqlite"\npath = "{run / "readings.sqlite"}"\n'
                       f"[console]\nport = {cport}\n")
        gw = Consumer([sys.executable, "-m", "gateway.cli", "gateway", "--config", str(cfg)],
                      run, health)
        gw.start()
        console = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "console", "--config", str(cfg)],
            stdout=open(run / "console.log", "wb"), stderr=subprocess.STDOUT,  # noqa: SIM115
            stdin=subprocess.DEVNULL, env=child_env(), start_new_session=True)
        try:
            wait_for(lambda: gw.metric("livinglab_buffer_depth_points") is not None, 30,
                     what="gateway up")
            wait_for(lambda: "console: " in (run / "console.log").read_text(), 30,
                     what="console up")
            pages = [timing(cport, "/"), timing(cport, "/devices/air-0001?window=24h")]
            pages += [timing(cport, f"/api/devices/air-0001/readings?quantity={q}&window=24h")
                      for q in ("co2", "temperature", "humidity")]
            pages.append(timing(cport, "/api/devices"))
            out["pages"] = pages
            print(json.dumps({"pages": pages}), file=sys.stderr, flush=True)
            rates = {"without_1": ingest(gw, broker.port, "a", a.messages)}
            # two people reloading fleet + device page every 2 s (SSE open), then two
            # clients reloading as fast as the console answers (a stress case)
            for name, tag, period in (("with_console", "b", 2.0), ("with_hammering", "c", 0.0)):
                browsers = [Browsers(cport, ["co2", "temperature", "humidity"], period)
                            for _ in range(2)]
                for b in browsers:
                    b.start()
                rates[name] = ingest(gw, broker.port, tag, a.messages)
                for b in browsers:
                    b.stop_flag.set()
                for b in browsers:
                    b.join(60)
                rates[name]["console_requests"] = sum(b.requests for b in browsers)
            rates["without_2"] = ingest(gw, broker.port, "d", a.messages)
            base = (rates["without_1"]["msg_per_s"] + rates["without_2"]["msg_per_s"]) / 2
            for name in ("with_console", "with_hammering"):
                rates[f"ratio_{name}"] = round(rates[name]["msg_per_s"] / base, 3)
            out["ingest"] = rates
        finally:
            stop_pid(console.pid)
            gw.stop()
    print(json.dumps(out, indent=1))
    if not a.keep:
        import shutil

        shutil.rmtree(run, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
