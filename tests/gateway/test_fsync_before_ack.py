"""Acknowledged means on the disk: a syscall trace of the real gateway and Mosquitto.

``strace -f -yy`` records, in completion order, every write to the buffer's WAL,
every fsync/fdatasync and every send on the broker socket. With the default
``durability = "fsync"`` each PUBACK (MQTT packet type 0x40) must come after an
fsync of the WAL that completed after the last WAL write before it: the commit
of the acked message is on the disk, not only in the page cache. The store is
unreachable, so nothing but ``put`` commits write the WAL. With the opt-out
``"os-cache"`` the same check must fail (it can tell the two apart).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.gateway.helpers import GatewayProc, Publisher, wait_subscribed, write_config
from tests.servers import Mosquitto, free_port, wait_for

pytestmark = pytest.mark.slow

N = 40
_LINE = re.compile(r"^(\d+)\s+(.*)$")
_CALL = re.compile(r"^(\w+)\((\d+)<(.*?)>(?=[,)\s])(.*)$")  # "->" inside TCP:[a->b]
_RESUMED = re.compile(r"^<\.\.\. (\w+) resumed>(.*)$")


def events(trace: str, broker_port: int) -> list[tuple[str, str]]:
    """(kind, phase) in order: kind wal-write | wal-sync | puback; phase start | end."""
    out: list[tuple[str, str]] = []
    open_calls: dict[str, str] = {}  # pid -> kind of its unfinished call
    for raw in trace.splitlines():
        m = _LINE.match(raw)
        if not m:
            continue
        pid, rest = m.groups()
        r = _RESUMED.match(rest)
        if r:
            kind = open_calls.pop(pid, "")
            if kind:
                out.append((kind, "end"))
            continue
        c = _CALL.match(rest)
        if not c:
            continue
        name, _, target, args = c.groups()
        kind = ""
        if target.endswith("buffer.sqlite-wal"):
            if name in ("fsync", "fdatasync"):
                kind = "wal-sync"
            elif name in ("write", "pwrite64", "writev", "pwritev"):
                kind = "wal-write"
        elif f":{broker_port}]" in target and name in ("sendto", "write", "sendmsg") \
                and args.startswith((', "@', ', "\\x40')):  # 0x40 (strace: as text or hex)
            kind = "puback"
        if not kind:
            continue
        out.append((kind, "start"))
        if "<unfinished ...>" in args:
            open_calls[pid] = kind
        else:
            out.append((kind, "end"))
    return out


def unsynced_acks(evs: list[tuple[str, str]]) -> tuple[int, int]:
    """(PUBACKs sent, PUBACKs sent while a WAL write was not yet followed by an fsync)."""
    dirty = False  # a WAL write started since the last completed fsync
    acks = bad = 0
    for kind, phase in evs:
        if kind == "wal-write" and phase == "start":
            dirty = True
        elif kind == "wal-sync" and phase == "end":
            dirty = False  # (a write racing this fsync would have set dirty after it)
        elif kind == "puback" and phase == "start":
            acks += 1
            bad += dirty
    return acks, bad


def traced_run(tmp_path: Path, mq: Mosquitto, durability: str) -> tuple[int, int]:
    hp = free_port()
    cfg = write_config(tmp_path / f"gw-{durability}.toml", mqtt_port=mq.port, health_port=hp,
                       store={"kind": "influxdb1", "url": f"http://127.0.0.1:{free_port()}",
                              "max_backoff_s": 5.0},
                       gateway={"durability": durability, "commit_window_s": 0.5,
                                "data_dir": str(tmp_path / f"var-{durability}")},
                       mqtt={"client_id": f"gw-{durability}"})
    trace = tmp_path / f"strace-{durability}.txt"
    gw = GatewayProc(cfg, hp)
    cmd = ["strace", "-f", "-yy", "-qq", "-x", "-s", "4", "-o", str(trace),
           "-e", "trace=write,pwrite64,writev,pwritev,sendto,sendmsg,fsync,fdatasync",
           sys.executable, "-m", "gateway.cli", "gateway", "--config", str(cfg)]
    with open(gw.log, "ab") as out:
        gw.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
    pub = Publisher(mq.port, client_id=f"pub-{durability}")
    try:
        wait_for(lambda: gw.healthz()[0] in (200, 503), 60, what="traced gateway up")
        assert gw.proc is not None
        if "ptrace" in gw.log.read_text() or "Operation not permitted" in gw.log.read_text():
            pytest.skip(f"strace cannot trace here: {gw.log.read_text()[-300:]}")
        wait_subscribed(gw, 30)
        for seq in range(N):  # one at a time: each its own commit and PUBACK
            pub.send(f"dev-{seq % 3:04d}", 1, seq, 1_700_000_000.0)
            time.sleep(0.15)
        pub.wait_all(30)
        wait_for(lambda: gw.metric("livinglab_messages_accepted_total") >= N, 30,
                 what="all committed")
        time.sleep(0.5)
        children = Path(f"/proc/{gw.proc.pid}/task/{gw.proc.pid}/children").read_text().split()
        assert children, "strace has no child"
        os.kill(int(children[0]), signal.SIGTERM)  # the gateway; strace exits with it
        assert gw.proc.wait(30) == 0
    finally:
        gw.kill()
        pub.close()
    return unsynced_acks(events(trace.read_text(), mq.port))


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed")
def test_every_puback_follows_an_fsync_of_the_wal(tmp_path: Path, mosquitto: Mosquitto) -> None:
    # the PUBACKs of one commit go out in one write (gateway.ingest.fastread): with
    # the commit window, a write per commit group of a few messages
    acks, bad = traced_run(tmp_path, mosquitto, "fsync")
    assert acks >= N // 4  # the telemetry, plus the gateway's own retained status
    assert bad == 0
    acks, bad = traced_run(tmp_path, mosquitto, "os-cache")
    assert acks >= N // 4 and bad >= acks // 2  # the check does tell the two apart
