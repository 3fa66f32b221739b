"""``python -m bench.startup``: start-up with a backlog, first point in the store, A/B.

Issue 21's start-up target: the time from starting ``livinglab gateway`` with a
backlog waiting in Mosquitto until the first point lands in the store. One
Mosquitto and one store are shared; each run queues ``-m`` fresh messages while
the gateway is down, starts it (t0 = just before ``Popen``), polls the store's
ingest counter every 20 ms (the first growth is the first point), waits for the
whole backlog, and stops it (SIGTERM). ``--tree LABEL=DIR`` runs another
checkout (e.g. a ``git worktree`` of an older commit) with the same venv, its
``PYTHONPATH`` pointing there; the labels alternate run by run.

    python -m bench.startup --rounds 5 -m 2000 --tree old=/tmp/old --tree new=.

Also reports ``import_s`` (a fresh python importing what the gateway imports before
it runs, wall time, interpreter start included) and ``subscribed_s`` (the broker
logged the gateway's SUBSCRIBE).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import string
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.procs import REPO, log_size, publish, stop, subscribed
from bench.profile import READINGS_PER_MSG
from bench.stores import DB, Counter, start_store
from tests.servers import Mosquitto, free_port

HERE = Path(__file__).resolve().parent


def env_for(tree: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVINGLAB_")}
    env["PYTHONPATH"] = str(tree)
    return env


def import_s(tree: Path, store: str) -> float:
    """Wall seconds of a fresh ``python -c`` importing what ``livinglab gateway`` imports
    before it runs: the CLI's assembly (all commands before ``modules_for``), gateway.app
    and the store module."""
    mod = "influxdb2" if store == "vm" else "influxdb1"
    code = ("import gateway.cli as c; m = getattr(c, 'modules_for', None); "
            "c.build_parser(m(['gateway']) if m else c.command_modules()); "
            f"import gateway.app; import gateway.stores.{mod}")
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], env=env_for(tree), cwd=tree, check=True)
    return time.perf_counter() - t0


def one(tree: Path, cfg: Path, log: Path, broker: Mosquitto, counter: Counter, tag: str,
        n: int) -> dict[str, object]:
    publish(broker.port, tag, n, 1)
    base = counter.progress()
    off = log_size(broker.log)
    with open(log, "ab") as f:
        t0 = time.time()
        p = subprocess.Popen([sys.executable, "-m", "gateway.cli", "gateway", "--config",
                              str(cfg)], stdout=f, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, env=env_for(tree), cwd=tree,
                             start_new_session=True)
    t_first = t_sub = None
    try:
        end = time.time() + 120
        while time.time() < end:
            t = time.time()
            if t_sub is None and subscribed(broker.log, off) is not None:
                t_sub = t
            try:
                g = counter.progress()
            except OSError:
                g = base
            if g > base and t_first is None:
                t_first = t
            if g - base >= n * READINGS_PER_MSG:
                break
            if p.poll() is not None:
                raise RuntimeError(f"gateway exited: {log.read_text()[-2000:]}")
            time.sleep(0.02 if t_first is None else 0.2)
        t_all = time.time()
    finally:
        stop(p)
    return {"first_point_s": round(t_first - t0, 3) if t_first else None,
            "subscribed_s": round(t_sub - t0, 3) if t_sub else None,
            "all_s": round(t_all - t0, 3), "landed": counter.progress() - base >= n * 8}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tree", action="append", default=[], metavar="LABEL=DIR",
                    help="a checkout to run (default: this one, labelled 'this')")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("-m", "--messages", type=int, default=2000, help="backlog per run")
    ap.add_argument("--store", choices=["vm", "influx"], default="influx")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "startup.jsonl")
    a = ap.parse_args(argv)
    trees = dict(t.split("=", 1) for t in a.tree) or {"this": str(REPO)}
    work = Path(tempfile.mkdtemp(prefix="bench-startup-"))
    broker = Mosquitto(work / "mosquitto", extra=("log_type subscribe",))
    broker.start()
    store = None
    runs: list[dict[str, object]] = []
    try:
        store, counter = start_store(a.store, work)
        tpl = HERE / ("gw-vm.toml.tpl" if a.store == "vm" else "gw.toml.tpl")
        cfgs = {}
        for label in trees:
            rd = work / label
            rd.mkdir()
            cfg = rd / "gw.toml"
            cfg.write_text(string.Template(tpl.read_text()).safe_substitute(
                MQTT_PORT=broker.port, STORE_URL=store.url, STORE_DB=DB,
                RUN_DIR=rd, CONSUMER_HTTP_PORT=free_port()))
            cfgs[label] = cfg
        # one start each (not timed) to open the persistent session and create the buffer
        for label, tree in trees.items():
            one(Path(tree), cfgs[label], work / label / "gw.log", broker, counter,
                f"warm{label}", 10)
        for k in range(a.rounds):
            order = list(trees) if k % 2 == 0 else list(reversed(trees))
            for label in order:
                imp = import_s(Path(trees[label]), a.store)
                r = one(Path(trees[label]), cfgs[label], work / label / "gw.log", broker,
                        counter, f"su{k}{label}", a.messages)
                r.update(label=label, round=k, import_s=round(imp, 3),
                         loadavg=Path("/proc/loadavg").read_text().split()[0],
                         at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
                print(json.dumps(r), flush=True)
                runs.append(r)
    finally:
        if store is not None:
            store.stop()
        broker.stop()
        shutil.rmtree(work, ignore_errors=True)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    with open(a.out, "a") as f:
        for r in runs:
            f.write(json.dumps(r) + "\n")
    for label in trees:
        rs = [r for r in runs if r["label"] == label]
        for key in ("import_s", "subscribed_s", "first_point_s", "all_s"):
            vals = sorted(float(r[key]) for r in rs if isinstance(r.get(key), float))  # type: ignore[arg-type]
            if vals:
                print(f"{label:>8} {key:<14} median {statistics.median(vals):.3f} "
                      f"(min {vals[0]:.3f}, max {vals[-1]:.3f}, n={len(vals)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
