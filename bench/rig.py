"""A gateway under a steady load, for the long-run benches (wear, soak).

Starts Mosquitto and VictoriaMetrics (``tests.servers``, free loopback ports,
stopped by PID) and ``livinglab gateway`` as a subprocess with its data_dir
on the local disk, and publishes the shared load profile (``bench.profile``:
3 samples, 8 readings, ~330 bytes a message) from a paced paho client, with
one message in ``bad_every`` deliberately invalid (it lands in quarantine).
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from bench.procs import child_env, proc_stats, stop
from bench.profile import SITE, fleet
from tests.servers import Mosquitto, VictoriaMetrics, free_port, running, wait_for


@dataclass
class Gateway:
    proc: subprocess.Popen[bytes]
    data_dir: Path
    log: Path
    health_port: int

    def io_write_bytes(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/io").read_text().splitlines():
            if line.startswith("write_bytes:"):
                return int(line.split()[1])
        raise RuntimeError("no write_bytes in /proc/PID/io")

    def rss_mib(self) -> float:
        return proc_stats(self.proc.pid).get("VmRSS", 0.0)

    def metric(self, name: str) -> float:
        import urllib.request
        with urllib.request.urlopen(f"http://127.0.0.1:{self.health_port}/metrics",
                                    timeout=5) as r:
            text = r.read().decode()
        return sum(float(ln.rsplit(" ", 1)[1]) for ln in text.splitlines()
                   if ln.startswith(name) and not ln.startswith("#"))

    def sizes(self) -> dict[str, int]:
        """Bytes of every file under data_dir, and of the log."""
        out = {p.name: p.stat().st_size for p in self.data_dir.iterdir() if p.is_file()}
        out["gateway.log"] = self.log.stat().st_size
        return out

    def rows(self) -> dict[str, int]:
        """Rows of the dedup record and the quarantine (a read-only look)."""
        db = sqlite3.connect(f"file:{self.data_dir / 'buffer.sqlite'}?mode=ro", uri=True,
                             timeout=5)
        try:
            return {t: int(db.execute(f"SELECT count(*) FROM {t}").fetchone()[0])
                    for t in ("seen", "quarantine", "msgs")}
        finally:
            db.close()


@dataclass
class Load:
    """A paced QoS 1 publisher in a thread; ``payload_bytes`` counts what it sent."""

    port: int
    rate: float
    devices: int = 200
    bad_every: int = 100
    tag: str = "soak"
    sent: int = 0
    payload_bytes: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def _run(self) -> None:
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-{self.tag}",
                             clean_session=True)
        client.max_inflight_messages_set(1000)
        client.max_queued_messages_set(0)
        client.connect("127.0.0.1", self.port, keepalive=60)
        client.loop_start()
        try:
            fl = fleet(self.tag, self.devices, seed=7)
            t0 = time.monotonic()
            k = 0
            while not self._stop.is_set():
                wait = t0 + k / self.rate - time.monotonic()
                if wait > 0:
                    self._stop.wait(wait)
                    continue
                dev = fl[k % len(fl)]
                if self.bad_every and k % self.bad_every == self.bad_every - 1:
                    payload = b'{"v": 1, "not": "telemetry"}'
                else:
                    payload = dev.payload()
                client.publish(dev.topic, payload, qos=1)
                self.sent += 1
                self.payload_bytes += len(payload)
                k += 1
        finally:
            client.disconnect()
            client.loop_stop()


@contextmanager
def services(work: Path) -> Iterator[tuple[Mosquitto, VictoriaMetrics]]:
    with ExitStack() as stack:
        mq = stack.enter_context(running(Mosquitto(work / "mosquitto")))
        vm = stack.enter_context(running(VictoriaMetrics(work / "vm")))
        yield mq, vm


@contextmanager
def gateway(work: Path, mq: Mosquitto, vm: VictoriaMetrics, name: str,
            **gw: Any) -> Iterator[Gateway]:
    """One gateway (its own data_dir and client id) until the block ends (SIGTERM)."""
    hp = free_port()
    data = work / f"data-{name}"
    cfg = work / f"{name}.toml"
    table = "\n".join(f"{k} = {json.dumps(v)}" for k, v in gw.items())
    cfg.write_text(f'site = "{SITE}"\n\n[gateway]\nid = "gw-bench"\ndata_dir = "{data}"\n'
                   f"health_port = {hp}\n{table}\n\n[mqtt]\nhost = \"127.0.0.1\"\n"
                   f'port = {mq.port}\nclient_id = "bench-gw-{name}"\n\n[store]\n'
                   f'kind = "influxdb2"\nurl = "{vm.url}"\ntoken = "x"\n')
    log = work / f"{name}.log"
    with open(log, "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "gateway.cli", "gateway", "--config",
                                 str(cfg)], stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=child_env(),
                                start_new_session=True)
    g = Gateway(proc, data, log, hp)
    try:
        wait_for(lambda: _up(g), 60, what="gateway subscribed")
        yield g
    finally:
        stop(proc)


def _up(g: Gateway) -> bool:
    if g.proc.poll() is not None:
        raise RuntimeError(f"gateway exited: {g.log.read_text()[-2000:]}")
    try:
        return g.metric('livinglab_messages_received_total{kind="gateway_status"}') >= 1
    except OSError:
        return False
