"""Shared helpers for the gateway's tests: payload builders, fakes, a subprocess runner."""

from __future__ import annotations

import asyncio
import functools
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.buffer.core import BufferFull, PutHook, PutResult
from gateway.ingest.mqtt import Message
from protocols import Accepted, Point, Rejection
from protocols.lineprotocol import parse_line
from tests.servers import wait_for

SITE = "test-site"
PREFIX = "livinglab/v1"
T0 = 1_795_351_934.0


def telemetry(device: str, boot: int, seq: int, ts: float = T0, co2: float = 600.0,
              **extra: Any) -> bytes:
    values: dict[str, Any] = {"co2": co2, "temperature": 21.5}
    values.update(extra)
    return json.dumps({"v": 1, "device": device, "boot": boot, "seq": seq,
                       "samples": [{"sensor": "scd41", "ts": ts, "values": values}]}).encode()


def topic(device: str, kind: str = "telemetry", site: str = SITE) -> str:
    return f"{PREFIX}/{site}/{device}/{kind}"


def msg(device: str, seq: int, *, boot: int = 1, mid: int = 0, gen: int = 1,
        payload: bytes | None = None, kind: str = "telemetry", site: str = SITE,
        received_at: float = T0 + 1) -> Message:
    body = telemetry(device, boot, seq, ts=T0 + seq) if payload is None else payload
    return Message(topic=topic(device, kind, site), payload=body, received_at=received_at,
                   qos=1 if mid else 0, mid=mid, generation=gen)


def points_of(acc: Accepted) -> tuple[Point, ...]:
    """An accepted message's points, also when validation handed them over encoded
    (``Accepted.body``, the gateway's hot path)."""
    if acc.body is None:
        return acc.points
    return tuple(parse_line(ln) for ln in acc.body.decode().split("\n") if ln)


@dataclass
class FakeSink:
    """Records acks and publishes; drops acks of another generation like MqttSource."""

    generation: int = 1
    acked: list[int] = field(default_factory=list)
    stale: list[int] = field(default_factory=list)
    published: list[tuple[str, bytes]] = field(default_factory=list)
    events: list[str] | None = None

    def ack(self, m: Message) -> bool:
        if m.qos == 0:
            return True
        if m.generation != self.generation:
            self.stale.append(m.mid)
            return False
        self.acked.append(m.mid)
        if self.events is not None:
            self.events.append(f"ack:{m.mid}")
        return True

    def publish(self, topic: str, payload: bytes, qos: int = 0, retain: bool = False) -> None:
        self.published.append((topic, payload))


@dataclass
class FakeBuffer:
    """In-memory stand-in for the buffer's intake side (``gateway.buffer.api.BufferIntake``):
    the real dedup by (device, boot, seq), the real counts, a switchable 'full' (or
    ``max_points``, as the real bound), and hooks called as the real ``put`` calls them,
    on an in-memory SQLite connection (so the delivery accounting's hooks run as they
    would). ``tests/gateway/test_buffer_contract.py`` holds it to the real buffer."""

    full: bool = False
    max_points: int | None = None  # full once this many points are held (the real bound)
    seen: set[tuple[str, int, int]] = field(default_factory=set)
    points: list[Point] = field(default_factory=list)
    quarantined: list[tuple[Rejection, bytes]] = field(default_factory=list)
    puts: int = 0
    events: list[str] | None = None
    db: sqlite3.Connection = field(
        default_factory=lambda: sqlite3.connect(":memory:", check_same_thread=False,
                                                isolation_level=None))

    def put(self, messages: Sequence[Accepted], received_at: float,
            rejected: Sequence[tuple[Rejection, bytes]] = (), *,
            hook: PutHook | None = None) -> PutResult:
        self.puts += 1
        if self.is_full():
            raise BufferFull(2, 1)  # as the real one: nothing written, no hook called
        taken = set(self.seen)
        dups: set[tuple[str, int, int]] = set()
        new: list[Point] = []
        acc = 0
        for m in messages:
            key = (m.device, m.boot, m.seq)
            if key in taken:  # accepted before, or earlier in this same call
                dups.add(key)
                continue
            taken.add(key)
            acc += 1
            new.extend(points_of(m))
        if hook is not None:  # staged in a transaction, done after it (or done(False))
            self.db.execute("BEGIN IMMEDIATE")
            try:
                hook.stage(self.db, dups)
                self.db.execute("COMMIT")
            except BaseException:
                if self.db.in_transaction:
                    self.db.execute("ROLLBACK")
                hook.done(False)
                raise
            hook.done(True)
        self.seen = taken  # committed: only now does the put change anything
        self.points.extend(new)
        self.quarantined.extend(rejected)
        if self.events is not None:
            self.events.append("put")
        return PutResult(acc, len(messages) - acc, len(new))

    def is_full(self) -> bool:
        return self.full or (self.max_points is not None and len(self.points) >= self.max_points)


def run_async(fn: Callable[[], Coroutine[Any, Any, None]]) -> Callable[[], None]:
    """Run a coroutine test with ``asyncio.run`` (no pytest asyncio plugin needed)."""

    @functools.wraps(fn)
    def wrapper() -> None:
        asyncio.run(asyncio.wait_for(fn(), 30))

    return wrapper


# ---- running the real CLI as a subprocess ---------------------------------------------

def write_config(path: Path, *, mqtt_port: int, health_port: int, store: dict[str, Any],
                 gateway: dict[str, Any] | None = None, mqtt: dict[str, Any] | None = None,
                 site: str = SITE) -> Path:
    def table(d: dict[str, Any]) -> str:
        return "\n".join(f"{k} = {json.dumps(v)}" for k, v in d.items())

    gw = {"id": "gw-test", "data_dir": str(path.parent / "var"), "health_port": health_port,
          **(gateway or {})}
    mq = {"host": "127.0.0.1", "port": mqtt_port, **(mqtt or {})}
    path.write_text(f'site = "{site}"\n\n[gateway]\n{table(gw)}\n\n[mqtt]\n{table(mq)}\n\n'
                    f"[store]\n{table(store)}\n")
    return path


class GatewayProc:
    """``livinglab gateway --config FILE`` as a subprocess (stderr to a log file)."""

    def __init__(self, config: Path, health_port: int) -> None:
        self.config = config
        self.health_port = health_port
        self.log = config.parent / "gateway.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, wait_healthy: bool = True, timeout: float = 20.0,
              env: dict[str, str] | None = None) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "gateway.cli", "gateway", "--config", str(self.config)],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                start_new_session=True)
        if wait_healthy:
            end = time.monotonic() + timeout
            while self.healthz()[0] != 200:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"gateway exited {self.proc.returncode}:\n"
                                       f"{self.log.read_text()[-3000:]}")
                if time.monotonic() > end:
                    raise TimeoutError(f"gateway not healthy:\n{self.log.read_text()[-3000:]}")
                time.sleep(0.05)

    def healthz(self) -> tuple[int, dict[str, Any]]:
        url = f"http://127.0.0.1:{self.health_port}/healthz"
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"{}")
        except (urllib.error.URLError, OSError, ValueError):
            return 0, {}

    def metrics(self) -> str:
        url = f"http://127.0.0.1:{self.health_port}/metrics"
        with urllib.request.urlopen(url, timeout=2) as r:
            return str(r.read().decode())

    def metric(self, name: str) -> float:
        """Sum of a metric's samples; ``name`` may include labels (exact match then)."""
        total = 0.0
        try:
            text = self.metrics()
        except (urllib.error.URLError, OSError):
            return 0.0
        for line in text.splitlines():
            if line.startswith("#"):
                continue
            head, _, value = line.rpartition(" ")
            if head == name or ("{" not in name and head.split("{")[0] == name):
                total += float(value)
        return total

    def terminate(self, timeout: float = 15.0) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout)
        self.proc = None
        return rc

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None


# ---- publishing a known stream and reading it back from the stores --------------------

Row = tuple[str, str, int, str, float]  # (device, sensor, time_ms, field, value)


def stream_payload(device: str, boot: int, seq: int, base: float,
                   samples: int = 1) -> tuple[bytes, list[Row]]:
    """A telemetry message with unique sample times, and the rows it must produce."""
    body: list[dict[str, Any]] = []
    rows: list[Row] = []
    for k in range(samples):
        ts = round(base + seq * samples + k, 3)
        co2, temp = float(400 + (seq * 7 + k) % 3000), round(15 + ((seq + k) % 200) / 10, 1)
        body.append({"sensor": "scd41", "ts": ts, "values": {"co2": co2, "temperature": temp}})
        ms = round(ts * 1000)
        rows += [(device, "scd41", ms, "co2", co2), (device, "scd41", ms, "temperature", temp)]
    payload = json.dumps({"v": 1, "device": device, "boot": boot, "seq": seq,
                          "samples": body}).encode()
    return payload, rows


class Publisher:
    """A QoS 1 paho publisher (auto-reconnecting) that records what must arrive."""

    def __init__(self, port: int, client_id: str = "test-publisher") -> None:
        import paho.mqtt.client as paho
        from paho.mqtt.enums import CallbackAPIVersion

        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                                  clean_session=False)
        self.client.max_inflight_messages_set(100)
        self.client.max_queued_messages_set(0)
        self.client.reconnect_delay_set(1, 2)
        self.acked: set[int] = set()
        self.client.on_publish = lambda c, u, mid, rc, props: self.acked.add(mid)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self.expected: list[Row] = []
        self.infos: list[Any] = []

    def send(self, device: str, boot: int, seq: int, base: float, samples: int = 1) -> None:
        payload, rows = stream_payload(device, boot, seq, base, samples)
        self.infos.append(self.client.publish(topic(device), payload, qos=1))
        self.expected += rows

    def raw(self, t: str, payload: bytes, retain: bool = False) -> None:
        self.client.publish(t, payload, qos=1, retain=retain).wait_for_publish(10)

    def wait_all(self, timeout: float = 60.0) -> None:
        end = time.monotonic() + timeout
        # PUBACKs seen by on_publish: is_published() raises for a message queued while the
        # client was disconnected, although paho sends it after reconnecting
        while not all(i.mid in self.acked for i in self.infos):
            if time.monotonic() > end:
                n = sum(1 for i in self.infos if i.mid not in self.acked)
                raise TimeoutError(f"{n} messages not acknowledged by the broker")
            time.sleep(0.05)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def influx_rows(influxd: Any, db: str, measurement: str = "air") -> list[Row]:
    rows: list[Row] = []
    try:
        points = influxd.points(db, measurement)
    except urllib.error.URLError:
        return rows
    for p in points:
        for f in ("co2", "temperature"):
            if p.get(f) is not None:
                rows.append((p["device"], p["sensor"], int(p["time"]), f, float(p[f])))
    return rows


def vm_rows(vm: Any, measurement: str = "air") -> list[Row]:
    rows: list[Row] = []
    for series in vm.export('{__name__=~"' + measurement + '_.+"}'):
        m = series["metric"]
        f = m["__name__"][len(measurement) + 1:]
        for t, v in zip(series["timestamps"], series["values"], strict=True):
            rows.append((m["device"], m["sensor"], int(t), f, float(v)))
    return rows


def wait_subscribed(gw: GatewayProc, timeout: float = 10.0) -> None:
    """The gateway has its subscription once it has seen its own retained status."""
    end = time.monotonic() + timeout
    while gw.metric('livinglab_messages_received_total{kind="gateway_status"}') < 1:
        if time.monotonic() > end:
            raise TimeoutError("gateway never received its own status (not subscribed?)")
        time.sleep(0.05)


def kill9_after(script: str, args: Sequence[str], marker: str, what: str,
                timeout: float = 30.0) -> None:
    """Run ``script`` (Python source) in a child with this checkout on its path, wait
    for it to print ``marker`` on a line of its own, then kill -9 it: a crash at a
    point the child chose (after a commit, after an ack)."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    child = subprocess.Popen([sys.executable, "-c", script, *args], stdout=subprocess.PIPE,
                             env=env, text=True)
    try:
        assert child.stdout is not None
        wait_for(lambda: child.stdout is not None and child.stdout.readline().strip() == marker,
                 timeout=timeout, what=what)
    finally:
        child.kill()
        child.wait(10)
