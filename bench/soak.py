"""``python -m bench.soak [--minutes 60]``: every store of state stays bounded over time.

A steady load (``--rate`` msg/s from ``--devices`` devices, 1 % invalid) runs
through Mosquitto -> gateway -> VictoriaMetrics for ``--minutes``, with the
retention windows shortened so that an hour shows many of their cycles: the
dedup window (``--dedup-window``, 7 days by default in production) and the
quarantine cap (``--quarantine-max``). Every ``--every`` seconds it samples the
gateway's RSS, the size of every file under data_dir (buffer, WAL, last-seen),
its log, and the rows of the dedup record and the quarantine. Samples go to a
JSON-lines file and a PNG plot (matplotlib: ``pip install -e .[bench]``).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.rig import Load, gateway, services

HERE = Path(__file__).resolve().parent


def soak(work: Path, seconds: float, rate: float, devices: int, dedup_window_s: float,
         quarantine_max: int, every_s: float,
         on_sample: Callable[[dict[str, Any]], None] = lambda s: None) -> list[dict[str, Any]]:
    """Run the load for ``seconds`` and return the samples (the first at t=0)."""
    samples: list[dict[str, Any]] = []
    with services(work) as (mq, vm), \
            gateway(work, mq, vm, "soak", dedup_window_s=dedup_window_s,
                    quarantine_max=quarantine_max) as gw:
        load = Load(mq.port, rate, devices)
        load.start()
        t0 = time.monotonic()
        try:
            while True:
                t = time.monotonic() - t0
                s: dict[str, Any] = {"t_s": round(t, 1), "rss_mib": gw.rss_mib(),
                                     "sent": load.sent, **gw.sizes(), **gw.rows()}
                samples.append(s)
                on_sample(s)
                if t >= seconds:
                    break
                time.sleep(min(every_s, max(0.0, seconds - t)))
        finally:
            load.stop()
        samples[-1]["accepted"] = gw.metric("livinglab_messages_accepted_total")
        samples[-1]["rejected_msgs"] = gw.metric(
            'livinglab_rejections_total{reason="missing_field"}')
    return samples


def plot(samples: list[dict[str, Any]], png: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = [s["t_s"] / 60 for s in samples]
    fig, (a1, a2, a3) = plt.subplots(3, 1, figsize=(9, 9), sharex=True)
    a1.plot(t, [s["rss_mib"] for s in samples], color="tab:red")
    a1.set_ylabel("gateway RSS (MiB)")
    a1.set_ylim(bottom=0)
    for name in ("buffer.sqlite", "buffer.sqlite-wal", "lastseen.sqlite",
                 "lastseen.sqlite-wal", "gateway.log"):
        a2.plot(t, [s.get(name, 0) / 1024 for s in samples], label=name)
    a2.set_ylabel("file size (KiB)")
    a2.set_ylim(bottom=0)
    a2.legend(fontsize=8, loc="upper left")
    for name in ("seen", "quarantine", "msgs"):
        a3.plot(t, [s.get(name, 0) for s in samples], label=f"{name} rows")
    a3.set_ylabel("rows")
    a3.set_ylim(bottom=0)
    a3.set_xlabel("minutes")
    a3.legend(fontsize=8, loc="upper left")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(png, dpi=90)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--rate", type=float, default=200.0, help="msg/s")
    ap.add_argument("--devices", type=int, default=200)
    ap.add_argument("--dedup-window", type=float, default=300.0, help="seconds")
    ap.add_argument("--quarantine-max", type=int, default=1000)
    ap.add_argument("--every", type=float, default=15.0, help="seconds between samples")
    ap.add_argument("--png", type=Path, default=HERE.parent / "docs" / "soak.png")
    ap.add_argument("--jsonl", type=Path, default=None)
    a = ap.parse_args(argv)
    jsonl = a.jsonl or HERE / "results" / f"soak-{time.strftime('%Y-%m-%d')}.jsonl"
    jsonl.parent.mkdir(parents=True, exist_ok=True)
    title = (f"soak: {a.rate:g} msg/s from {a.devices} devices for {a.minutes:g} min, "
             f"dedup window {a.dedup_window:g} s, quarantine cap {a.quarantine_max}")
    got: list[dict[str, Any]] = []

    def on_sample(s: dict[str, Any]) -> None:
        got.append(s)
        with open(jsonl, "a") as f:
            f.write(json.dumps(s) + "\n")
        print(json.dumps(s), flush=True)
        if len(got) % 8 == 0:  # a partial plot, should the run be cut short
            plot(got, a.png, title + " (partial)")

    with tempfile.TemporaryDirectory(prefix="soak-", dir="/var/tmp") as d:
        samples = soak(Path(d), a.minutes * 60, a.rate, a.devices, a.dedup_window,
                       a.quarantine_max, a.every, on_sample)
    plot(samples, a.png, title)
    print(json.dumps({"png": str(a.png), "jsonl": str(jsonl), **samples[-1]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
