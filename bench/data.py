"""``python -m bench.data [--sizes 1000000,10000000] [--ingest N]``: the data-team figures.

1. Export: fills an embedded SQLite store with N readings (bulk inserts straight into
   the ``readings`` table: the gateway path would take hours for 10M on this machine),
   then runs ``livinglab export`` (csv, parquet) as a subprocess per size and reports
   readings/s and the export's peak RSS (``ru_maxrss`` of the child). Bounded memory
   shows as an RSS that stays flat from 1M to 10M. ``--influx N`` also fills a real
   influxd (1.6, v1 API) with N readings through the gateway's store writer and
   exports them (filling 10M that way takes too long on the shared machine).
2. Ingest with delivery accounting on vs off: the gateway's commit path in-process
   (decode + validate + dedup + buffer put, batches of 2,000 messages from 50
   devices, 2 samples each), each batch to an accounting buffer and a plain one
   back to back, CPU time of the committing thread; the ratio is what counts.
3. ``--e2e N``: the real gateway process, accounting on vs off, draining the same
   queued backlog of N messages (see :func:`ingest_e2e`).

A JSON line with the figures is appended to bench/results/data-<date>.jsonl.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
T0_MS = 1_764_028_800_000  # 2025-11-25T00:00:00Z
DEVICES = 50


def fill_sqlite(path: Path, n: int) -> tuple[int, int]:
    """n readings (co2 + temperature pairs) of 50 devices, one sample per device every
    10 s; returns (first ms, last ms + 1)."""
    from gateway.stores.sqlite import SCHEMA

    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=OFF")
    db.executescript(SCHEMA)
    db.execute("BEGIN")
    rows: list[tuple[str, str, str, str, str, float, int]] = []
    i = 0
    t = T0_MS
    while i < n:
        for d in range(DEVICES):
            dev = f"air-{d:04d}"
            rows.append(("air", "bench", dev, "scd41", "co2", 400.0 + (i % 1000) * 0.1, t + d))
            rows.append(("air", "bench", dev, "scd41", "temperature", 20.0 + (i % 50) * 0.01,
                         t + d))
            i += 2
            if i >= n:
                break
        t += 10_000
        if len(rows) >= 100_000:
            db.executemany("INSERT INTO readings VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
            rows.clear()
    db.executemany("INSERT INTO readings VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
    db.execute("COMMIT")
    db.close()
    return T0_MS, t + 10_000


def run_export(cfg: Path, since_ms: int, until_ms: int, fmt: str, out: Path
               ) -> dict[str, float]:
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(since_ms // 1000))
    until = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(until_ms // 1000 + 1))
    cmd = [sys.executable, "-c",
           "import resource, sys\n"
           "from gateway.cli import main\n"
           "rc = main(sys.argv[1:])\n"
           "print('maxrss_kib', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "
           "file=sys.stderr)\n"
           "sys.exit(rc)\n",
           "export", "--config", str(cfg), "--since", since, "--until", until,
           "--format", fmt, "--out", str(out)]
    t = time.monotonic()
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
    dt = time.monotonic() - t
    if r.returncode != 0:
        raise SystemExit(f"export failed: {r.stderr[-2000:]}")
    rss = int(r.stderr.split("maxrss_kib")[-1].split()[0])
    n = int(r.stdout.split()[1])
    return {"readings": n, "seconds": round(dt, 2), "readings_per_s": round(n / dt),
            "peak_rss_mib": round(rss / 1024, 1), "bytes": out.stat().st_size}


def export_bench(sizes: list[int], work: Path) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for n in sizes:
        d = work / f"n{n}"
        d.mkdir()
        cfg = d / "c.toml"
        cfg.write_text(f'site = "bench"\n[gateway]\ndata_dir = "{d}/var"\n'
                       f'[store]\nkind = "sqlite"\npath = "{d}/r.sqlite"\n')
        t = time.monotonic()
        since, until = fill_sqlite(d / "r.sqlite", n)
        fill_s = time.monotonic() - t
        for fmt in ("csv", "parquet"):
            res = run_export(cfg, since, until, fmt, d / f"out.{fmt}")
            row = {"size": n, "format": fmt, "store": "sqlite", "fill_s": round(fill_s, 1), **res}
            print(json.dumps(row), flush=True)
            out.append(row)
            (d / f"out.{fmt}").unlink()
        (d / "r.sqlite").unlink()
    return out


def fill_influxd(url: str, n: int) -> tuple[int, int]:
    """The same readings as :func:`fill_sqlite`, written to influxd through the store's
    own writer (v1 ``/write``, 5,000 lines per request)."""
    import asyncio

    from gateway.stores.influxdb1 import InfluxDB1Store
    from protocols.config import StoreSection

    async def go() -> int:
        store = InfluxDB1Store(StoreSection(kind="influxdb1", url=url, database="bench",
                                           timeout_s=120))
        await store.ensure_ready()
        lines: list[str] = []
        i, t = 0, T0_MS
        while i < n:
            for d in range(DEVICES):
                lines.append(f"air,device=air-{d:04d},sensor=scd41,site=bench "
                             f"co2={400.0 + (i % 1000) * 0.1!r},"
                             f"temperature={20.0 + (i % 50) * 0.01!r} {t + d}")
                i += 2
                if i >= n:
                    break
            t += 10_000
            if len(lines) >= 5000:
                await store.write("\n".join(lines).encode(), len(lines))
                lines.clear()
        if lines:
            await store.write("\n".join(lines).encode(), len(lines))
        await store.aclose()
        return t

    last = asyncio.run(go())
    return T0_MS, last + 10_000


def influx_bench(n: int, work: Path) -> list[dict[str, object]]:
    from tests.servers import Influxd, running

    out: list[dict[str, object]] = []
    with running(Influxd(work / "influxd")) as srv:
        t = time.monotonic()
        since, until = fill_influxd(srv.url, n)
        fill_s = time.monotonic() - t
        cfg = work / "influx.toml"
        cfg.write_text(f'site = "bench"\n[gateway]\ndata_dir = "{work}/var"\n'
                       f'[store]\nkind = "influxdb1"\nurl = "{srv.url}"\n'
                       'database = "bench"\ntimeout_s = 60\n')
        res = run_export(cfg, since, until, "csv", work / "influx.csv")
        row = {"size": n, "format": "csv", "store": "influxdb1", "fill_s": round(fill_s, 1),
               **res}
        print(json.dumps(row), flush=True)
        out.append(row)
    return out


def ingest_bench(n_msgs: int, rounds: int, work: Path) -> dict[str, object]:
    from gateway.app import load_accounting
    from gateway.buffer.core import DurableBuffer
    from gateway.ingest.decode import decode
    from gateway.ingest.mqtt import Message

    def messages(boot: int, start: float) -> list[Message]:
        out = []
        for i in range(n_msgs):
            dev = f"air-{i % DEVICES:04d}"
            seq = i // DEVICES
            if seq % 97 == 5:
                continue  # some gaps, so the missing path runs too
            body = json.dumps({"v": 1, "device": dev, "boot": boot, "seq": seq, "samples": [
                {"sensor": "scd41", "ts": start + seq * 2 + k,
                 "values": {"co2": 400.0 + k, "temperature": 21.5}} for k in range(2)]})
            out.append(Message(topic=f"livinglab/v1/bench/{dev}/telemetry",
                               payload=body.encode(), received_at=start + i * 0.001, qos=1,
                               mid=1, generation=1))
        return out

    # Interleaved per batch: the same 2,000 messages go to an accounting buffer and to
    # a plain one right after each other, so both see the same machine; CPU time of
    # this thread (decode + put, SQLite included), not wall time: other processes on
    # the shared machine then count for neither.
    cpu = {True: 0.0, False: 0.0}
    wall = {True: 0.0, False: 0.0}
    total = 0
    for r in range(rounds):
        msgs = messages(r + 1, time.time() - 3600)
        total += len(msgs)
        bufs = {a: DurableBuffer(work / f"ingest-{r}-{a}.sqlite", 1 << 32) for a in (True, False)}
        acc = load_accounting(work / f"ingest-{r}-True.sqlite")
        for i in range(0, len(msgs), 2000):
            batch = msgs[i:i + 2000]
            for account in ((True, False) if (i // 2000 + r) % 2 == 0 else (False, True)):
                c, w = time.process_time(), time.perf_counter()
                dec = decode(batch, "bench", "livinglab/v1", account=account)
                at = batch[0].received_at
                if account:
                    bufs[True].put(dec.accepted, at, dec.rejected,
                                   hook=acc.with_events(dec.deliveries))
                else:
                    bufs[False].put(dec.accepted, at, dec.rejected)
                cpu[account] += time.process_time() - c
                wall[account] += time.perf_counter() - w
        for a, b in bufs.items():
            b.close()
            (work / f"ingest-{r}-{a}.sqlite").unlink()
    on, off = total / cpu[True], total / cpu[False]
    res = {"messages": total, "off_msg_per_cpu_s": round(off),
           "on_msg_per_cpu_s": round(on), "cost_pct": round((1 - on / off) * 100, 1),
           "wall_cost_pct": round((wall[True] / wall[False] - 1) * 100, 1)}
    print(json.dumps(res), flush=True)
    return res


def ingest_e2e(n: int, rounds: int, work: Path) -> dict[str, object]:
    """The real gateway process, accounting on vs off, draining the same backlog.

    Two gateways (ids ``gw-on``, ``gw-off``, SQLite stores) subscribe once, so the
    broker keeps a session for each; then every round queues ``n`` messages (50
    devices, per-device seqs) for both, starts one gateway, times until it has
    accepted them all, stops it, and does the same with the other (order
    alternating), so both drain identical backlogs on the same machine minutes
    apart. (Site: the test helpers' ``test-site``, which their publisher uses.)"""
    from tests.gateway.helpers import GatewayProc, Publisher, wait_subscribed, write_config
    from tests.servers import Mosquitto, free_port, running

    drain: dict[bool, list[float]] = {True: [], False: []}
    with running(Mosquitto(work / "mosquitto")) as mq:
        gws: dict[bool, GatewayProc] = {}
        for on in (True, False):
            hp = free_port()
            d = work / f"gw-{on}"
            d.mkdir()
            cfg = write_config(d / "gw.toml", mqtt_port=mq.port, health_port=hp,
                               store={"kind": "sqlite", "path": str(d / "r.sqlite")},
                               gateway={"id": "gw-on" if on else "gw-off",
                                        "delivery_accounting": on})
            gws[on] = GatewayProc(cfg, hp)
            gws[on].start()
            wait_subscribed(gws[on])
            gws[on].terminate()
        pub = Publisher(mq.port, client_id="bench-data-publisher")
        try:
            for r in range(rounds):
                base = time.time() - 3 * n
                for i in range(n):
                    seq = r * n // DEVICES + i // DEVICES
                    pub.send(f"air-{i % DEVICES:04d}", 1, seq, base + i % DEVICES * 0.001)
                pub.wait_all(600)
                pub.expected.clear()
                for on in ((True, False) if r % 2 == 0 else (False, True)):
                    gw = gws[on]
                    t = time.monotonic()
                    gw.start(wait_healthy=False)
                    end = t + 600
                    while True:
                        got = gw.metric("livinglab_messages_accepted_total")
                        if got >= n:
                            break
                        if time.monotonic() > end:
                            raise SystemExit(f"gateway {on}: {got} of {n} after 600 s")
                        time.sleep(0.02)
                    drain[on].append(time.monotonic() - t)
                    gw.terminate()
        finally:
            pub.close()
            for gw in gws.values():
                gw.kill()
    on_s, off_s = sum(drain[True]), sum(drain[False])
    res = {"messages_per_round": n, "rounds": rounds, "off_msg_per_s": round(n * rounds / off_s),
           "on_msg_per_s": round(n * rounds / on_s), "cost_pct": round((on_s / off_s - 1) * 100, 1),
           "drain_s_on": [round(x, 2) for x in drain[True]],
           "drain_s_off": [round(x, 2) for x in drain[False]]}
    print(json.dumps(res), flush=True)
    return res


def main() -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.data")
    # every figure in docs/benchmarks.md: python -m bench.data --influx 1000000
    ap.add_argument("--sizes", default="1000000,10000000",
                    help="export sizes in readings (comma-separated)")
    ap.add_argument("--ingest", type=int, default=60_000, help="messages per ingest round")
    ap.add_argument("--rounds", type=int, default=6, help="ingest rounds (on/off each)")
    ap.add_argument("--skip-export", action="store_true")
    ap.add_argument("--influx", type=int, default=0, metavar="N",
                    help="also export N readings from a real influxd (csv)")
    ap.add_argument("--skip-ingest", action="store_true")
    ap.add_argument("--e2e", type=int, default=0, metavar="N",
                    help="also: the gateway process draining N queued messages, accounting "
                         "on vs off")
    ap.add_argument("--e2e-rounds", type=int, default=2)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-data-") as tmp:
        work = Path(tmp)
        ingest = {} if args.skip_ingest else ingest_bench(args.ingest, args.rounds, work)
        exports = [] if args.skip_export else export_bench(
            [int(s) for s in args.sizes.split(",")], work)
        if args.influx:
            exports += influx_bench(args.influx, work)
        e2e = ingest_e2e(args.e2e, args.e2e_rounds, work) if args.e2e else {}
    summary = {"at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
               "machine": f"{platform.machine()} {os.cpu_count()} cpu, "
                          f"load {os.getloadavg()[0]:.1f}", "ingest": ingest,
               "ingest_e2e": e2e,
               "export": exports, "self_rss_mib": round(
                   resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
    res = HERE / "results" / f"data-{time.strftime('%Y%m%d')}.jsonl"
    with open(res, "a") as f:
        f.write(json.dumps(summary) + "\n")
    print(f"summary appended to {res}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
