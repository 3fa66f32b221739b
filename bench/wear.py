"""``python -m bench.wear``: bytes the gateway writes to disk per message (SD-card wear).

For each rate (10, 100, 1,000 msg/s by default) a fresh gateway (its own
data_dir on the local disk) takes the shared load profile (~330-byte
messages from 200 devices) for ``--seconds`` after a warm-up, and the
growth of its ``write_bytes`` in ``/proc/PID/io`` (what the kernel sent or
will send to the block device on its behalf: WAL, checkpoints, dedup record,
last-seen, log) is divided by the messages and by the payload bytes sent.
Each rate runs with ``durability = "fsync"`` (the default) and "os-cache".
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.rig import Load, gateway, services
from tests.servers import wait_for

DAY_MSGS_200_DEVICES = 200 * 86400 / 10  # one message every 10 s each


def measure(work: Path, rate: float, seconds: float, durability: str,
            **gw: Any) -> dict[str, Any]:
    with services(work / f"svc-{rate:g}-{durability}") as (mq, vm), \
            gateway(work, mq, vm, f"wear-{rate:g}-{durability}",
                    **({} if durability == "default" else {"durability": durability}),
                    **gw) as g:
        load = Load(mq.port, rate, 200, bad_every=0, tag=f"w{int(rate)}")
        load.start()
        time.sleep(min(5.0, seconds / 3))  # warm-up: schema, first pages, connections
        w0, n0, b0 = g.io_write_bytes(), load.sent, load.payload_bytes
        time.sleep(seconds)
        w1, n1, b1 = g.io_write_bytes(), load.sent, load.payload_bytes
        load.stop()
        wait_for(lambda: g.metric("livinglab_messages_accepted_total") >= load.sent, 60,
                 what="every message committed")
    msgs, payload, written = n1 - n0, b1 - b0, w1 - w0
    per_msg = written / msgs
    return {"rate": rate, "durability": durability, "seconds": seconds, "messages": msgs,
            "payload_bytes_per_msg": round(payload / msgs, 1),
            "written_bytes": written, "bytes_per_msg": round(per_msg),
            "bytes_per_payload_byte": round(written / payload, 2),
            "lab200_mib_per_day": round(per_msg * DAY_MSGS_200_DEVICES / 2**20, 1)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rates", default="10,100,1000")
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--durability", default="fsync,os-cache",
                    help='comma-separated; "default" sets no key (a gateway without it)')
    ap.add_argument("--commit-window", type=float, default=None,
                    help="[gateway] commit_window_s (default: the config default)")
    a = ap.parse_args(argv)
    extra = {} if a.commit_window is None else {"commit_window_s": a.commit_window}
    rows = []
    with tempfile.TemporaryDirectory(prefix="wear-", dir="/var/tmp") as d:
        for dur in a.durability.split(","):
            for rate in (float(r) for r in a.rates.split(",")):
                row = measure(Path(d), rate, a.seconds, dur, **extra)
                print(json.dumps(row), flush=True)
                rows.append(row)
    print(f"\n{'msg/s':>6} {'durability':>10} {'B/msg':>7} {'B/payload B':>11} "
          f"{'200-device lab MiB/day':>22}")
    for r in rows:
        print(f"{r['rate']:>6g} {r['durability']:>10} {r['bytes_per_msg']:>7} "
              f"{r['bytes_per_payload_byte']:>11} {r['lab200_mib_per_day']:>22}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
