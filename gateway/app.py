"""The gateway process: wires MQTT/serial ingress, pipeline, buffer, forwarder, health.

One event loop. Startup order: buffer and store (so a config mistake fails
fast), health port (a busy port fails fast), then the broker connection, which
is retried with backoff. Shutdown on SIGTERM/SIGINT, within 10 s:

1. stop taking messages (new ones are left unacked; the broker redelivers them);
2. commit and ack what is pending (<= 2 s);
3. flush the forwarder (<= ~6 s); unflushed rows stay in the durable buffer;
4. publish the retained ``offline`` status, disconnect cleanly, exit 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import signal
import sqlite3
import time
from typing import Any

from gateway.accounting.delivery import Accounting
from gateway.accounting.lastseen import LastSeen, lastseen_path
from gateway.accounting.rejections import RejectionCounts
from gateway.buffer.core import BufferFull, DiskFull, DurableBuffer
from gateway.forward.forwarder import Forwarder
from gateway.forward.retry import Backoff
from gateway.ingest.grouping import commit_group
from gateway.ingest.mqtt import MqttSource
from gateway.ingest.pipeline import Pipeline
from gateway.ingest.serial import SerialSource
from gateway.ops.health import start_health_server
from gateway.ops.metrics import Metrics
from gateway.ops.sdnotify import Notifier, describe
from gateway.ops.stations import POLL_S as STATION_POLL_S
from gateway.ops.stations import StationWatcher
from gateway.ops.status import REFRESH_S, GatewayHealth, offline_payload, online_payload
from gateway.ops.store_health import GatewaySample, gateway_points, package_version
from protocols import Accepted
from protocols.config import Config
from protocols.topics import gateway_status_topic, rejected_topic, site_filter

from .stores import make_store

log = logging.getLogger("livinglab.gateway")

STORE_DOWN_UNHEALTHY_S = 60.0
SHUTDOWN_S = 9.0  # SIGTERM to exit, the contract says 10 s
DRAIN_S = 2.0
FLUSH_S = 6.0
STATION_BOOT = -3  # the buffer item of ``station`` points (seq = put time in ms + index)
STATION_CHUNK = 500


class Gateway:
    """All the parts of one running gateway, and the two loops the app owns."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        prefix = cfg.mqtt.topic_prefix
        self.started_at = time.time()
        self.metrics = Metrics()
        cfg.gateway.data_dir.mkdir(parents=True, exist_ok=True)
        self.buffer = DurableBuffer(cfg.buffer_file, cfg.gateway.buffer_max_bytes,
                                    cfg.gateway.quarantine_max,
                                    sync_full=cfg.gateway.durability == "fsync",
                                    seen_window_s=cfg.gateway.dedup_window_s,
                                    quarantine_max_bytes=cfg.gateway.quarantine_max_bytes)
        self.store = make_store(cfg.store)
        self.forwarder = Forwarder(self.buffer, self.store, self.metrics,
                                   batch_size=cfg.store.batch_size,
                                   flush_interval_s=cfg.store.flush_interval_s,
                                   backoff=Backoff(cap=cfg.store.max_backoff_s))
        self.lastseen = LastSeen(lastseen_path(cfg.gateway.data_dir))
        self.accounting = load_accounting(cfg.buffer_file) \
            if cfg.gateway.delivery_accounting else None
        self.rejections = load_rejections(cfg.buffer_file) \
            if cfg.gateway.delivery_accounting else None
        self.status_topic = gateway_status_topic(cfg.site, cfg.gateway.id, prefix)
        self.offline = offline_payload(cfg.gateway.id, cfg.site)
        self.source = MqttSource(cfg, site_filter(cfg.site, prefix), self._submit,
                                 will_topic=self.status_topic, will_payload=self.offline,
                                 on_connect=self.publish_status)
        self.pipeline = Pipeline(site=cfg.site, prefix=prefix,
                                 rejected_topic=rejected_topic(cfg.site, cfg.gateway.id, prefix),
                                 buffer=self.buffer, sink=self.source, metrics=self.metrics,
                                 wake=self.forwarder.wake, lastseen=self.lastseen,
                                 registry=cfg.registry, accounting=self.accounting,
                                 commit_window_s=cfg.gateway.commit_window_s,
                                 commit_group=commit_group(cfg),
                                 rejections=self.rejections,
                                 serial_ids={port: frozenset(ids) for port, ids
                                             in cfg.gateway.serial_ids.items()})
        self.serial = SerialSource(cfg.gateway.serial_ports, cfg.gateway.serial_baud, cfg.site,
                                   prefix, self._submit, self._serial_noise)
        self.depth = 0
        self.oldest_age_s = 0.0
        self.failed = False
        self.notify = Notifier()  # systemd's READY/WATCHDOG/STATUS/STOPPING (docs/pi.md)

    def _submit(self, msg: Any) -> None:
        self.pipeline.submit(msg)

    def _serial_noise(self) -> None:
        self.metrics.received.labels(kind="serial_noise").inc()

    # -- health --------------------------------------------------------------------

    def store_down_s(self) -> float:
        since = getattr(self.forwarder, "failing_since", None)
        return 0.0 if since is None else max(time.monotonic() - float(since), 0.0)

    def disk_full(self) -> bool:
        return self.pipeline.disk_full or self.forwarder.disk_full

    def health(self) -> tuple[int, dict[str, Any]]:
        """503 while the broker or store is lost, or acks are held back (full buffer/disk)."""
        ok = self.source.connected and self.store_down_s() <= STORE_DOWN_UNHEALTHY_S \
            and not self.pipeline.full and not self.disk_full()
        doc = {"status": "ok" if ok else "unhealthy", "mqtt_connected": self.source.connected,
               "buffer_depth": self.depth, "oldest_age_s": round(self.oldest_age_s, 3),
               "buffer_full": self.pipeline.full, "disk_full": self.disk_full(),
               "store_down_s": round(self.store_down_s(), 1),
               "pending": len(self.pipeline.pending)}
        return (200 if ok else 503), doc

    def _total(self, name: str, labels: dict[str, str] | None = None) -> int:
        """A counter's value (summed over labels when ``labels`` is None)."""
        reg = self.metrics.registry
        if labels is not None:
            return int(reg.get_sample_value(name, labels) or 0)
        return int(sum(s.value for m in reg.collect() for s in m.samples if s.name == name))

    def publish_status(self) -> None:
        h = GatewayHealth(
            gateway=self.cfg.gateway.id, site=self.cfg.site, started_at=self.started_at,
            received=self._total("livinglab_messages_received_total", {"kind": "telemetry"}),
            accepted=self._total("livinglab_messages_accepted_total"),
            rejected=self._total("livinglab_rejections_total"),
            duplicates=self._total("livinglab_duplicates_total"),
            forwarded=self._total("livinglab_points_forwarded_total"),
            buffer_depth=self.depth, buffer_full=self.pipeline.full,
            disk_full=self.disk_full())
        self.source.publish(self.status_topic, online_payload(h), qos=1, retain=True)

    async def _refresh(self, stop: asyncio.Event) -> None:
        """Buffer gauges every second, the retained status every ``REFRESH_S``."""
        last_status = last_delivery = time.monotonic()
        last_flags = (False, False)
        while not stop.is_set():
            stats = await asyncio.to_thread(self.buffer.stats)
            self.depth, self.oldest_age_s = stats.depth, stats.oldest_age_s
            self.metrics.buffer_depth.set(stats.depth)
            self.metrics.buffer_oldest_age.set(stats.oldest_age_s)
            self.metrics.buffer_bytes.set(stats.size_bytes)
            await asyncio.to_thread(self.lastseen.flush_if_due)  # also when ingest is idle
            self.notify.status(describe(self.health()[1]))
            if time.monotonic() - last_delivery >= self.cfg.gateway.delivery_flush_s:
                last_delivery = time.monotonic()
                await self.pipeline.flush_delivery(time.time())
            flags = (self.pipeline.full, self.disk_full())
            if time.monotonic() - last_status >= REFRESH_S or flags != last_flags:
                last_status, last_flags = time.monotonic(), flags
                self.publish_status()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)

    async def put_health(self, up: bool = True) -> None:
        """One ``gateway`` point into the buffer's priority lines (gateway/ops/store_health)."""
        stats = await asyncio.to_thread(self.buffer.stats)
        online = sum(1 for d in await asyncio.to_thread(self.lastseen.all)
                     if d.state == "online")
        now = time.time()
        sample = GatewaySample(
            site=self.cfg.site, gateway=self.cfg.gateway.id, at=now, up=up,
            broker_connected=self.source.connected, buffer_points=stats.depth,
            buffer_oldest_s=stats.oldest_age_s,
            disk_free_bytes=shutil.disk_usage(self.cfg.gateway.data_dir).free,
            devices_online=online, uptime_s=now - self.started_at,
            interval_s=self.cfg.gateway.store_health_s, version=package_version())
        try:
            await asyncio.to_thread(self.buffer.put_priority, gateway_points(sample), now)
        except DiskFull:
            return  # the next one may fit; the health endpoint says the disk is full
        self.forwarder.wake()

    async def _store_health(self, stop: asyncio.Event) -> None:
        """A ``gateway`` point every ``store_health_s`` (the first is written by ``run``)."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.cfg.gateway.store_health_s)
            if not stop.is_set():
                await self.put_health()

    async def _stations(self, stop: asyncio.Event) -> None:
        """``station`` points: at start, within ``POLL_S`` of an inventory change, and the
        current state every day (gateway/ops/stations.py); through the buffer like
        readings. A full buffer or an unreadable inventory is tried again next poll."""
        watcher = StationWatcher(self.cfg.gateway.data_dir, self.cfg.site)
        complained = False
        while not stop.is_set():
            now = time.time()
            try:
                points = await asyncio.to_thread(watcher.due, now)
                for i in range(0, len(points), STATION_CHUNK):
                    chunk = tuple(points[i:i + STATION_CHUNK])
                    item = Accepted(device="_station", boot=STATION_BOOT,
                                    seq=int(now * 1000) + i, points=chunk)
                    await asyncio.to_thread(self.buffer.put, [item], now)
                if points:
                    watcher.written(points)
                    self.forwarder.wake()
                complained = False
            except (BufferFull, sqlite3.Error) as exc:  # DiskFull is a BufferFull
                if not complained:
                    log.warning("station points not buffered yet (%s); trying again", exc)
                complained = True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), STATION_POLL_S)

    # -- run -------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event, connect_timeout_s: float = 0.0) -> None:
        g = self.cfg.gateway
        stats = await asyncio.to_thread(self.buffer.stats)
        self.depth, self.oldest_age_s = stats.depth, stats.oldest_age_s
        server = None
        if g.health_port:
            server = await start_health_server(g.health_host, g.health_port, self.health,
                                               self.metrics.render)
        fwd_stop = asyncio.Event()
        tasks: list[asyncio.Task[Any]] = []

        def supervise(task: asyncio.Task[Any]) -> None:
            """A stage that dies is a bug: log it once and stop, so a supervisor restarts us."""
            if not task.cancelled() and task.exception() is not None:
                exc = task.exception()
                log.error("%s failed; stopping the gateway", task.get_name(),
                          exc_info=(type(exc), exc, exc.__traceback__) if exc else None)
                self.failed = True
                stop.set()

        def spawn(coro: Any, name: str) -> None:
            task = asyncio.create_task(coro, name=name)
            task.add_done_callback(supervise)
            tasks.append(task)

        try:
            spawn(self.notify.watchdog(), "watchdog")
            await self.put_health()  # before the forwarder starts: the first it sends
            spawn(self.forwarder.run(fwd_stop), "forwarder")
            spawn(self._store_health(stop), "store-health")
            spawn(self._stations(stop), "stations")
            connect = asyncio.create_task(self.source.connect(connect_timeout_s))
            stopped = asyncio.create_task(stop.wait())
            await asyncio.wait({connect, stopped}, return_when=asyncio.FIRST_COMPLETED)
            if not connect.done():
                connect.cancel()
            else:
                stopped.cancel()
                connect.result()  # BrokerUnreachable propagates
                log.info("gateway %s serving site %s (client id %s)", g.id, self.cfg.site,
                         self.cfg.client_id)
                self.notify.ready(describe(self.health()[1]))
                self.serial.start(asyncio.get_running_loop())
                spawn(self.source.run(stop), "mqtt")
                spawn(self.pipeline.run(stop), "pipeline")
                spawn(self._refresh(stop), "refresh")
                await stop.wait()
            await self._shutdown(tasks, fwd_stop)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if server is not None:
                server.close()
            await self.source.close()
            await self.store.aclose()
            self.buffer.close()
            self.lastseen.close()
            self.notify.close()

    async def _shutdown(self, tasks: list[asyncio.Task[Any]], fwd_stop: asyncio.Event) -> None:
        """Steps 1-4 of the module docstring, all within ``SHUTDOWN_S``."""
        end = time.monotonic() + SHUTDOWN_S

        def left(cap: float, reserve: float = 0.0) -> float:
            return max(0.0, min(cap, end - reserve - time.monotonic()))

        self.notify.stopping()
        log.info("stopping: committing %d pending messages", len(self.pipeline.pending))
        self.pipeline.stop_intake()
        await asyncio.to_thread(self.serial.stop, 0.5)
        stages = [t for t in tasks if t.get_name() in ("pipeline", "refresh", "mqtt")]
        if stages:
            await asyncio.wait(stages, timeout=left(DRAIN_S))
        await self.pipeline.drain(left(DRAIN_S))
        await self.pipeline.flush_delivery(time.time())
        await self.put_health(up=False)  # the centre knows at once: a clean stop
        fwd_stop.set()
        fwd = [t for t in tasks if t.get_name() == "forwarder"]
        if fwd:
            await asyncio.wait(fwd, timeout=left(1.0))
        flush_s = left(FLUSH_S, reserve=2.0)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.forwarder.flush(flush_s), flush_s + 0.2)
        if self.source.connected:
            await self.source.publish_wait(self.status_topic, self.offline, left(1.0))
        log.info("stopped; %d points left in the buffer for the next start",
                 (await asyncio.to_thread(self.buffer.stats)).depth)


def load_accounting(path: Any) -> Accounting:
    """The delivery accounting with its recent state read from the buffer file."""
    acc = Accounting()
    db = sqlite3.connect(path, timeout=30.0, isolation_level=None)
    try:
        db.execute("BEGIN IMMEDIATE")
        acc.load(db, time.time())
        db.execute("COMMIT")
    finally:
        db.close()
    return acc


def load_rejections(path: Any) -> RejectionCounts:
    """The rejection counts (next to the delivery accounting) from the buffer file."""
    counts = RejectionCounts()
    db = sqlite3.connect(path, timeout=30.0, isolation_level=None)
    try:
        counts.load(db, time.time())
    finally:
        db.close()
    return counts


async def run_gateway(cfg: Config, connect_timeout_s: float = 0.0) -> int:
    """Run until SIGTERM/SIGINT; returns the exit code."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        gw = Gateway(cfg)
        await gw.run(stop, connect_timeout_s)
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
    return 1 if gw.failed else 0
