"""``python -m bench [--quick]``: the whole benchmark in one run, one table.

Starts its own Mosquitto (persistence, unlimited queues) and store on free
loopback ports, then, in this order and on the same services:

  1. broker ceiling  a plain paho subscriber (and mosquitto_sub) counts the load
  2. live            the consumer runs; max-rate publishers; first publish -> all landed
  3. backlog         SIGTERM the consumer, queue M messages, restart, time the drain
  4. latency         paced 1,000 msg/s; publish -> store ack, p50/p99
  5. RSS             peak VmHWM of the consumer over all phases

Each phase checks zero loss exactly (points in the store == points sent; the
VictoriaMetrics store keeps duplicates, so extra points show too). A summary
JSON line is appended to bench/results/<date>.jsonl.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import string
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.flame import summarise
from bench.phases import (
    Ctx,
    backlog,
    broker_ceiling,
    drain_ceiling,
    latency,
    live,
    start_consumer,
)
from bench.procs import REPO, Consumer
from bench.stores import DB, start_store
from tests.servers import Mosquitto, free_port

HERE = Path(__file__).resolve().parent
TARGETS = {"backlog_msg_per_s": 6000.0, "p99_s": 1.0, "rss_mib": 100.0}


def consumer_cmd(kind: str, cfg: Path) -> list[str]:
    if kind == "gateway":
        return [sys.executable, "-m", "gateway.cli", "gateway", "--config", str(cfg)]
    if kind == "standin":
        return [sys.executable, "-m", "bench.standin", "--config", str(cfg)]
    return ["bash", "-c", "exec " + kind.replace("{config}", str(cfg))]


def render_config(tpl: Path, out: Path, values: dict[str, str]) -> Path:
    out.write_text(string.Template(tpl.read_text()).safe_substitute(values))
    return out


def machine() -> dict[str, object]:
    cpu = next((ln.split(":", 1)[1].strip() for ln in
                Path("/proc/cpuinfo").read_text().splitlines() if ln.startswith("model name")),
               "?")
    mem = next(int(ln.split()[1]) for ln in Path("/proc/meminfo").read_text().splitlines()
               if ln.startswith("MemTotal"))
    return {"nproc": os.cpu_count(), "cpu": cpu, "ram_gib": round(mem / 2**20, 1),
            "kernel": platform.release(), "python": platform.python_version(),
            "loadavg_before": Path("/proc/loadavg").read_text().split()[0]}


def report(r: dict[str, object]) -> str:
    c, lv, bl, lt = (r.get(k) or {} for k in ("ceiling", "live", "backlog", "latency"))
    rows = [f"benchmark {r['started']} consumer={r['consumer']} store={r['store']} "
            f"quick={r['quick']} ({r['machine']['nproc']} cores)"]  # type: ignore[index]
    for name, v in (c or {}).items():  # type: ignore[union-attr]
        rows.append(f"  broker ceiling ({name:13s}) {v['msg_per_s']} msg/s = "
                    f"{v['readings_per_s']} readings/s ({v['received']}/{v['sent']} received, "
                    f"publishers {v['pub_msg_per_s']} msg/s)")
    for name, v in (r.get("drain_ceiling") or {}).items():  # type: ignore[union-attr]
        rows.append(f"  drain ceiling  ({name:13s}) {v['msg_per_s']} msg/s = "
                    f"{v['readings_per_s']} readings/s ({v['received']}/{v['sent']} received, "
                    f"{v['seconds']} s)")
    if lv:
        rows.append(f"  live end-to-end             {lv['msg_per_s']} msg/s = "
                    f"{lv['readings_per_s']} readings/s over {lv['seconds']} s (publishers "
                    f"{lv['pub_msg_per_s']} msg/s; all in {lv['after_last_puback_s']} s after "
                    f"the last PUBACK) points {lv['points_landed']}/{lv['points_expected']}")
    if bl:
        rows.append(f"  backlog drain ({bl['sent']:>7} msg) {bl['msg_per_s']} msg/s = "
                    f"{bl['readings_per_s']} readings/s, {bl['drain_s']} s (first point "
                    f"{bl['first_point_s']} s) points {bl['points_landed']}/"
                    f"{bl['points_expected']}")
    if lt:
        rows.append(f"  latency @{lt['rate']:g} msg/s           p50 {lt['p50_s']} s, p90 "
                    f"{lt['p90_s']} s, p99 {lt['p99_s']} s, max {lt['max_s']} s "
                    f"({lt['matched']}/{lt['sent']} msgs) points {lt['points_landed']}/"
                    f"{lt['points_expected']}")
    if "peak_rss_mib" in r:
        rows.append(f"  consumer peak RSS           {r['peak_rss_mib']} MiB")
    for k, v in (r.get("ratios") or {}).items():  # type: ignore[union-attr]
        rows.append(f"  ratio {k:29s} {v}")
    for k, ok in (r.get("targets") or {}).items():  # type: ignore[union-attr]
        rows.append(f"  target {k:28s} {'MET' if ok else 'MISSED'}")
    return "\n".join(rows)


def ratios(r: dict[str, object]) -> dict[str, float]:
    """Ours against the limit measured in the same run (msg/s over msg/s)."""
    out: dict[str, float] = {}
    for phase, ceil in (("live", "ceiling"), ("backlog", "drain_ceiling")):
        ph: dict[str, float] = r.get(phase) or {}  # type: ignore[assignment]
        c: dict[str, dict[str, float]] = r.get(ceil) or {}  # type: ignore[assignment]
        for name, v in c.items():
            if ph.get("msg_per_s") and v.get("msg_per_s"):
                out[f"{phase} / {ceil} {name}"] = round(ph["msg_per_s"] / v["msg_per_s"], 2)
    lv: dict[str, float] = r.get("live") or {}  # type: ignore[assignment]
    if lv.get("msg_per_s") and lv.get("pub_msg_per_s"):
        out["live / publishers"] = round(lv["msg_per_s"] / lv["pub_msg_per_s"], 2)
    return out


def run_peer(a: argparse.Namespace, n_live: int, n_backlog: int) -> int:
    """bench/peer.sh once on the same counts: Node-RED and ours through the peer harness."""
    env = dict(os.environ, MESSAGES=str(n_live), BACKLOG=str(n_backlog),
               RATES=str(int(a.latency_rate)), STORES="influx")
    return subprocess.run(["bash", str(HERE / "peer.sh"), "1"], env=env, timeout=3600).returncode


def targets(r: dict[str, object]) -> dict[str, bool]:
    lv, bl, lt = (r.get(k) or {} for k in ("live", "backlog", "latency"))
    t: dict[str, bool] = {}
    phases = [p for p in (lv, bl, lt) if p]
    t["zero loss (every phase)"] = bool(phases) and all(p["zero_loss"] for p in phases)  # type: ignore[index]
    if bl:
        t["backlog >= 6,000 msg/s"] = (bl["msg_per_s"] or 0) >= TARGETS["backlog_msg_per_s"]  # type: ignore[index,operator]
    if lv:
        # keeping up: everything in within 2 s of the publishers' last PUBACK
        t["live keeps up with publishers"] = lv["after_last_puback_s"] <= 2.0  # type: ignore[index,operator]
    if lt:
        t["p99 < 1 s @ 1,000 msg/s"] = lt["p99_s"] is not None and lt["p99_s"] < 1.0  # type: ignore[index,operator]
    t["RSS < 100 MB"] = 0 < float(r["peak_rss_mib"]) * 1.048576 < 100  # type: ignore[arg-type]
    return t


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smaller counts (a few minutes)")
    ap.add_argument("--consumer", default="gateway",
                    help="gateway (livinglab gateway), standin (bench/standin.py) or a "
                         "command with {config} for the config file path")
    ap.add_argument("--store", choices=["vm", "influx"], default="vm")
    ap.add_argument("--config-template", type=Path, default=None,
                    help="default: bench/gw-vm.toml.tpl (vm) or bench/gw.toml.tpl (influx)")
    ap.add_argument("--publishers", type=int, default=2, help="loadgen processes at max rate")
    ap.add_argument("--live", type=int, default=None, help="messages in the live phase")
    ap.add_argument("--backlog", type=int, default=None, help="messages queued while down")
    ap.add_argument("--latency-seconds", type=float, default=None)
    ap.add_argument("--latency-rate", type=float, default=1000.0)
    ap.add_argument("--skip", default="",
                    help="comma list of ceiling,drain_ceiling,live,backlog,latency")
    ap.add_argument("--profile", action="store_true",
                    help="py-spy the consumer during live and backlog (pip install py-spy); "
                         "folded stacks in bench/results/profile-<time>/")
    ap.add_argument("--peer", action="store_true",
                    help="then run bench/peer.sh once (Node-RED and ours via ../shared/peers)")
    ap.add_argument("--keep", action="store_true", help="keep the run dir (logs, data)")
    ap.add_argument("--durability", choices=["fsync", "os-cache"], default=None,
                    help="the gateway's [gateway] durability (default: its config default)")
    ap.add_argument("--out", type=Path,
                    default=HERE / "results" / f"{time.strftime('%Y%m%d')}.jsonl")
    a = ap.parse_args(argv)
    n_live = a.live or (20_000 if a.quick else 100_000)
    n_backlog = a.backlog or (20_000 if a.quick else 100_000)
    lat_s = a.latency_seconds or (10.0 if a.quick else 30.0)
    skip = set(filter(None, a.skip.split(",")))
    tpl = a.config_template or HERE / ("gw-vm.toml.tpl" if a.store == "vm" else "gw.toml.tpl")

    run_dir = Path(tempfile.mkdtemp(prefix="livinglab-bench-"))
    r: dict[str, object] = {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                            "consumer": a.consumer, "store": a.store, "quick": a.quick,
                            "publishers": a.publishers, "machine": machine(),
                            "durability": a.durability,
                            "commit": _git_head()}
    broker = Mosquitto(run_dir / "mosquitto", extra=("log_type subscribe",))
    store = None
    consumer = None
    try:
        broker.start()
        store, counter = start_store(a.store, run_dir)
        health = free_port()
        cfg = render_config(tpl, run_dir / "consumer.toml", {
            "MQTT_PORT": str(broker.port), "STORE_URL": store.url, "STORE_PORT": str(store.port),
            "STORE_DB": DB, "RUN_DIR": str(run_dir), "CONSUMER_HTTP_PORT": str(health)})
        if a.durability:  # [gateway] durability: the cost of fsync-before-ack
            cfg.write_text(cfg.read_text().replace(
                "[gateway]\n", f'[gateway]\ndurability = "{a.durability}"\n', 1))
        consumer = Consumer(consumer_cmd(a.consumer, cfg), run_dir, health)
        ctx = Ctx(run_dir, broker, counter, consumer, a.publishers)
        if a.profile:
            ctx.profile_dir = HERE / "results" / f"profile-{time.strftime('%Y%m%d-%H%M%S')}"
            ctx.profile_dir.mkdir(parents=True, exist_ok=True)
        if "ceiling" not in skip:
            r["ceiling"] = broker_ceiling(ctx, n_live)
            print("\n".join(report(r).splitlines()[1:]), flush=True)
        if "drain_ceiling" not in skip:
            r["drain_ceiling"] = drain_ceiling(ctx, n_backlog)
            print("\n".join(report(r).splitlines()[-2:]), flush=True)
        r["client_id"] = start_consumer(ctx)
        if "live" not in skip:
            r["live"] = live(ctx, n_live)
            print(report(r).splitlines()[-1], flush=True)
        if "backlog" not in skip:
            r["backlog"] = backlog(ctx, n_backlog)
            print(report(r).splitlines()[-1], flush=True)
        if "latency" not in skip:
            r["latency"] = latency(ctx, a.latency_rate, lat_s)
        consumer.stats()
    except BaseException:
        if consumer is not None:
            print("consumer log (last lines):\n" + consumer.tail(), file=sys.stderr)
        raise
    finally:
        if consumer is not None:
            consumer.stop()
        if store is not None:
            store.stop()
        broker.stop()
        if a.keep:
            print(f"run dir kept: {run_dir}")
        else:
            shutil.rmtree(run_dir, ignore_errors=True)
    r["peak_rss_mib"] = consumer.peak_rss_mib
    r["ratios"] = ratios(r)
    r["targets"] = targets(r)
    print(report(r))
    for phase in ("live", "backlog"):
        ph: dict[str, object] = r.get(phase) or {}  # type: ignore[assignment]
        if ph.get("profile"):
            secs = ph.get("drain_s") or ph.get("seconds")
            print(summarise(Path(str(ph["profile"])), 12, float(secs)))  # type: ignore[arg-type]
    a.out.parent.mkdir(parents=True, exist_ok=True)
    with open(a.out, "a") as f:
        f.write(json.dumps(r) + "\n")
    print(f"result appended to {a.out}")
    if a.peer:
        return run_peer(a, n_live, n_backlog)
    return 0


def _git_head() -> str:
    try:
        return subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, timeout=10).stdout.strip()
    except OSError:
        return "?"
