"""``livinglab demo``: broker, simulated fleet, gateway and store on one machine.

Every part is the real thing run the way production runs it: the firmware under
the MicroPython unix port, the gateway as its own ``livinglab gateway`` process,
readings in the embedded SQLite store. Only the broker is embedded (amqtt), so
the demo needs nothing installed beyond the Python package. With ``--config`` the
demo uses that config's broker and store instead and starts no broker.

Every child (broker, gateway, each device) is recorded in ``demo.pids`` as it
starts and stopped by PID in ``finally``, in the order that loses nothing:
devices first, then the gateway (it flushes on SIGTERM), then the broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import sqlite3
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from protocols.config import Config, load_config
from protocols.quantities import RESERVED_DOMAINS
from protocols.sqlitefile import open_readonly

from .demo_pids import Children, still_running
from .embedded_broker import EmbeddedBroker
from .fleet import Fleet, FleetEvent, log_tail
from .fleet_errors import FleetError
from .fleet_monitor import Tally, cancel, free_port, port_open, watch
from .fleet_plan import (
    BrokerTarget,
    DeviceSpec,
    Kind,
    broker_target,
    device_config,
    local_tz_h,
    parse_settings,
    plan_counts,
    plan_round_robin,
)
from .fleet_proc import die_with_parent
from .liveview import DeviceRow, LiveView

DEMO_SITE = "demo-lab"
DEFAULT_COUNTS: Mapping[Kind, int] = {"air": 2, "light": 1, "flow": 1}
GATEWAY_STOP_S = 12.0  # the gateway promises to exit within 10 s of SIGTERM
CONSOLE_PORT = 8080  # the console's default; another free port when it is taken


class DemoError(FleetError):
    """The demo could not start one of its parts; the message says which and why."""


@dataclass(frozen=True)
class DemoOptions:
    data_dir: Path
    duration: float | None = None
    devices: int | None = None  # None: the default mix of kinds
    interval_s: int = 2
    config: Path | None = None


def demo_config_text(data_dir: Path, broker_port: int, health_port: int) -> str:
    """The gateway config the demo writes: embedded broker (MQTT 3.1.1), SQLite store."""
    return (f'site = "{DEMO_SITE}"\n\n[gateway]\nid = "gw-demo"\n'
            f'data_dir = "{data_dir / "gateway"}"\nhealth_port = {health_port}\n\n'
            f'[mqtt]\nhost = "127.0.0.1"\nport = {broker_port}\nprotocol = "3.1.1"\n'
            f'keepalive = 10\n\n[store]\nkind = "sqlite"\n'
            f'path = "{data_dir / "readings.sqlite"}"\n')


def landed_per_device(path: Path, since_ms: int) -> dict[str, int] | None:
    """Readings (rows) per device in the SQLite store since ``since_ms``; None if unreadable."""
    try:
        con = open_readonly(path, 1.0)
        if con is None:
            return None
        try:
            # readings only: not the gateway's own points (the reserved measurements)
            marks = ", ".join("?" * len(RESERVED_DOMAINS))
            rows = con.execute(f"SELECT device, count(*) FROM readings WHERE measurement NOT IN "
                               f"({marks}) AND measurement NOT LIKE '%\\_info' ESCAPE '\\' "
                               "AND time_ms >= ? GROUP BY device",
                               (*RESERVED_DOMAINS, since_ms))
            return {str(d): int(n) for d, n in rows}
        finally:
            con.close()
    except sqlite3.Error:
        return None


def _http_status(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=1) as r:
            return int(r.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (urllib.error.URLError, OSError):
        return None


class Demo:
    """One demo run; :meth:`run` returns the exit code."""

    def __init__(self, opts: DemoOptions, emit: Callable[[str], None] | None = None) -> None:
        self.opts = opts
        self.emit = emit or (lambda line: print(line, flush=True))
        self.dir = opts.data_dir.resolve()
        self.children = Children(self.dir / "demo.pids")
        self.broker: EmbeddedBroker | None = None
        self.gateway: asyncio.subprocess.Process | None = None
        self.console: asyncio.subprocess.Process | None = None
        self.console_url: str | None = None
        self.fleet: Fleet | None = None
        self.events: list[str] = []
        self.started_ms = int(time.time() * 1000)

    def _prepare_dir(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        running = still_running(self.children.pid_file)
        if running:
            raise DemoError(f"another demo is running in {self.dir} (pids "
                            f"{' '.join(map(str, running))}); stop it or pass --data-dir")
        self.children.pid_file.write_text("")
        if self.opts.config is None:
            # Every run starts from scratch (store, gateway buffer, device flash), so the
            # counts are this run's and no outbox from an earlier run is replayed into it.
            for name in ("readings.sqlite", "readings.sqlite-wal", "readings.sqlite-shm"):
                (self.dir / name).unlink(missing_ok=True)
            for sub in ("gateway", "fleet"):
                shutil.rmtree(self.dir / sub, ignore_errors=True)

    def _plan(self, seed: int) -> list[DeviceSpec]:
        if self.opts.devices is not None:
            return plan_round_robin(self.opts.devices, seed)
        return plan_counts(DEFAULT_COUNTS, seed)

    async def _start_broker(self) -> tuple[Config, Path, BrokerTarget]:
        if self.opts.config is not None:
            cfg = load_config(self.opts.config)
            target = broker_target(cfg)
            if not port_open(target.host, target.port):
                raise DemoError(f"MQTT broker {target.host}:{target.port} from {self.opts.config}"
                                " is not reachable (start it, or run the demo without --config)")
            self.emit(f"broker: {target.host}:{target.port} (from {self.opts.config})")
            return cfg, self.opts.config, target
        self.broker = EmbeddedBroker(self.dir / "broker.log")
        # Spawned from the loop thread, not a worker: see devices/fleet_proc.py.
        self.broker.start()
        assert self.broker.pid is not None
        self.children.add(self.broker.pid, "broker")
        self.emit(f"broker: embedded amqtt on 127.0.0.1:{self.broker.port} "
                  f"(pid {self.broker.pid})")
        cfg_path = self.dir / "gateway.toml"
        cfg_path.touch(mode=0o600)  # config files may hold passwords: owner only
        cfg_path.chmod(0o600)
        cfg_path.write_text(demo_config_text(self.dir, self.broker.port, free_port()))
        cfg = load_config(cfg_path)
        return cfg, cfg_path, broker_target(cfg)

    async def _start_gateway(self, cfg: Config, cfg_path: Path, stop: asyncio.Event) -> None:
        log = self.dir / "gateway.log"
        with open(log, "ab") as out:
            self.gateway = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "gateway.cli", "gateway", "--config", str(cfg_path),
                "--connect-timeout", "15", stdin=asyncio.subprocess.DEVNULL, stdout=out,
                stderr=asyncio.subprocess.STDOUT, start_new_session=True,
                preexec_fn=die_with_parent())
        self.children.add(self.gateway.pid, "gateway")
        port = cfg.gateway.health_port
        url = f"http://{cfg.gateway.health_host}:{port}/healthz"
        end = time.monotonic() + 25
        while port and time.monotonic() < end and not stop.is_set():
            if self.gateway.returncode is not None:
                raise DemoError(f"the gateway exited with code {self.gateway.returncode}: "
                                f"{log_tail(log)} (full log: {log})")
            if await asyncio.to_thread(_http_status, url) == 200:
                break
            await asyncio.sleep(0.2)
        else:
            if port and not stop.is_set():
                self.emit(f"warning: gateway not healthy after 25 s (see {log})")
        self.emit(f"gateway: pid {self.gateway.pid}, store {cfg.store.kind}"
                  f"{' ' + str(cfg.store.path) if cfg.store.kind == 'sqlite' else ''}, "
                  f"log {log}")

    async def _start_console(self, cfg: Config, cfg_path: Path, stop: asyncio.Event) -> None:
        """``livinglab console`` on loopback (port 8080 when free); the demo goes on without
        it if it cannot start, saying why."""
        port = CONSOLE_PORT if not port_open("127.0.0.1", CONSOLE_PORT) else free_port()
        log = self.dir / "console.log"
        with open(log, "ab") as out:
            self.console = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "gateway.cli", "console", "--config", str(cfg_path),
                "--host", "127.0.0.1", "--port", str(port), stdin=asyncio.subprocess.DEVNULL,
                stdout=out, stderr=asyncio.subprocess.STDOUT, start_new_session=True,
                preexec_fn=die_with_parent())
        self.children.add(self.console.pid, "console")
        end = time.monotonic() + 20
        while time.monotonic() < end and not stop.is_set():
            if self.console.returncode is not None:
                self.emit(f"warning: the console exited: {log_tail(log)} (full log: {log})")
                return
            if port_open("127.0.0.1", port):
                self.console_url = f"http://127.0.0.1:{port}/"
                self.emit(f"console: {self.console_url}  (open it in a browser)")
                return
            await asyncio.sleep(0.2)
        self.emit(f"warning: the console did not start within 20 s (see {log})")

    def _on_fleet_event(self, ev: FleetEvent) -> None:
        if ev.kind == "started" and ev.pid is not None:
            self.children.add(ev.pid, f"device {ev.device}")
        if ev.kind in ("exited", "restarting"):
            self.events.append(ev.text)

    async def run(self) -> int:
        self._prepare_dir()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        monitor: asyncio.Task[None] | None = None
        tally: Tally | None = None
        cfg: Config | None = None
        t0 = time.monotonic()
        try:
            cfg, cfg_path, target = await self._start_broker()
            await self._start_gateway(cfg, cfg_path, stop)
            await self._start_console(cfg, cfg_path, stop)
            settings = parse_settings(cfg.fleet)
            specs = self._plan(settings.seed)
            site = cfg.site

            def configure(spec: DeviceSpec) -> dict[str, Any]:
                return device_config(spec, site=site, broker=target,
                                     interval_s=self.opts.interval_s, profile=settings.profile,
                                     tz_h=local_tz_h(),
                                     extra_sensors=settings.extra_sensors.get(spec.kind, ()))

            self.fleet = Fleet(specs, self.dir / "fleet", configure, heapsize=settings.heapsize,
                               max_backoff_s=settings.max_backoff_s,
                               on_event=self._on_fleet_event, files=target.device_files())
            self.fleet.prepare()
            tally = Tally(target.prefix, site)
            monitor = asyncio.create_task(watch(target, tally, protocol=cfg.mqtt.protocol))
            await self.fleet.start()
            self.emit(f"fleet: {len(specs)} devices ({', '.join(s.device for s in specs)}), "
                      f"every {self.opts.interval_s} s; Ctrl-C stops the demo")
            await self._live(stop, tally, cfg, t0)
        finally:
            await self._stop_all()
            await cancel(monitor)
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
        return self._summary(cfg, tally, time.monotonic() - t0)

    def _rows(self, tally: Tally, landed: dict[str, int] | None) -> list[DeviceRow]:
        assert self.fleet is not None
        rows = []
        for dev in self.fleet.devices:
            seen = tally.devices.get(dev.spec.device)
            rows.append(DeviceRow(
                device=dev.spec.device, kind=dev.spec.kind,
                values=dict(seen.values) if seen else {},
                messages=seen.messages if seen else 0,
                landed=None if landed is None else landed.get(dev.spec.device, 0),
                last_seen=seen.last_seen if seen else None,
                state=(seen.state if seen else "") if dev.running else "not running"))
        return rows

    async def _live(self, stop: asyncio.Event, tally: Tally, cfg: Config, t0: float) -> None:
        view = LiveView(sys.stdout, cfg.registry)
        store = cfg.store.path if cfg.store.kind == "sqlite" else None
        while not stop.is_set():
            elapsed = time.monotonic() - t0
            if self.opts.duration is not None and elapsed >= self.opts.duration:
                break
            if self.gateway is not None and self.gateway.returncode is not None:
                raise DemoError(f"the gateway stopped (code {self.gateway.returncode}): "
                                f"{log_tail(self.dir / 'gateway.log')}")
            landed = (await asyncio.to_thread(landed_per_device, store, self.started_ms - 60_000)
                      if store else None)
            header = (f"livinglab demo — site {cfg.site} — {elapsed:.0f} s"
                      f"{f' of {self.opts.duration:.0f} s' if self.opts.duration else ''} — "
                      f"telemetry {tally.total()}, rejected {self._rejected(tally)} — Ctrl-C stops"
                      f"{f' — console {self.console_url}' if self.console_url else ''}")
            view.update(self._rows(tally, landed), header, elapsed)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)

    @staticmethod
    def _rejected(tally: Tally) -> int:
        counted = [int(g.get("rejected", 0) or 0) for g in tally.gateways.values()]
        return max([tally.rejected, *counted])

    async def _stop_all(self) -> None:
        """Devices, then the gateway (it flushes), then the broker; each bounded, by PID."""
        if self.fleet is not None:
            await self.fleet.stop()
        if self.console is not None and self.console.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.console.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.console.wait(), 8)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    self.console.kill()
                await asyncio.wait_for(self.console.wait(), 5)
        if self.gateway is not None and self.gateway.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.gateway.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.gateway.wait(), GATEWAY_STOP_S)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    self.gateway.kill()
                await asyncio.wait_for(self.gateway.wait(), 5)
        if self.broker is not None:
            await asyncio.to_thread(self.broker.stop)

    def _summary(self, cfg: Config | None, tally: Tally | None, elapsed: float) -> int:
        emit = self.emit
        emit("")
        emit(f"demo stopped after {elapsed:.0f} s")
        if cfg is not None and tally is not None and self.fleet is not None:
            store = cfg.store.path if cfg.store.kind == "sqlite" else None
            landed = landed_per_device(store, self.started_ms - 60_000) if store else None
            for dev in self.fleet.devices:
                seen = tally.devices.get(dev.spec.device)
                got = "-" if landed is None else str(landed.get(dev.spec.device, 0))
                emit(f"  {dev.spec.device:<12} telemetry {seen.messages if seen else 0:>4}   "
                     f"readings landed {got:>6}")
            emit(f"  rejected: {self._rejected(tally)}   device restarts: "
                 f"{self.fleet.restarts()}")
            for line in self.events[-5:]:
                emit(f"  {line}")
            if store is not None:
                emit(f"store: {store}")
                emit(f'  sqlite3 -readonly {store} "SELECT device, field, count(*), '
                     f"round(avg(value), 1) FROM readings WHERE measurement NOT IN "
                     f"('device', 'delivery') GROUP BY device, field\"")
            else:
                emit(f"store: {cfg.store.kind} at {cfg.store.url}")
        left = self.children.alive()
        pids = " ".join(f"{p}:{r.replace(' ', '=')}" for p, r in self.children.pids.items())
        emit(f"processes: {pids}")
        emit(f"pid file: {self.children.pid_file}; "
             f"{'all stopped' if not left else 'STILL RUNNING: ' + str(left)}")
        return 0 if not left else 1
