"""``livinglab city simulate``: a whole city on one machine, writing to one store.

For each of N sites: a real Mosquitto on a free loopback port and a real
``livinglab gateway`` (site ``city-XX``, its own data_dir), every gateway writing
to the one store named in the given config's ``[store]``; then the CPython load
model of M devices per site (:mod:`devices.city_load`). So the centre's readers,
the city console and the sizing can be tried here against a city's traffic.

Every child runs in its own process group (``start_new_session``) and dies with
this process (``PR_SET_PDEATHSIG``); the stop order loses nothing: devices
(their wills fire), then the gateways (SIGTERM: they flush), then the brokers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import resource
import shutil
import signal
import socket
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from protocols.config import Config, load_config

from .city_load import CityLoad, SiteTally
from .city_model import plan_city
from .errors import DevicesError
from .fleet_proc import die_with_parent

__all__ = ["City", "CityError", "CityOptions", "broker_conf", "site_config_text"]

HOST = "127.0.0.1"
GATEWAY_STOP_S = 12.0  # the gateway promises to exit within 10 s of SIGTERM
START_S = 30.0
RECEIVED = 'livinglab_messages_received_total{kind="telemetry"}'


class CityError(DevicesError):
    """The city could not start one of its parts; the message says which and why."""


@dataclass(frozen=True)
class CityOptions:
    config: Path
    sites: int
    per_site: int
    duration: float | None = None
    interval_s: int = 30
    data_dir: Path | None = None  # None: a temp dir, removed after a clean run
    seed: int = 1


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def broker_conf(port: int, data_dir: Path) -> str:
    """A site broker: persistence on (the gateway's session survives), no queue cap."""
    return "\n".join([
        f"listener {port} {HOST}", "allow_anonymous true", "persistence true",
        f"persistence_location {data_dir}/", "autosave_interval 10",
        "max_queued_messages 0", "max_inflight_messages 0", "log_dest stderr",
        "log_type error", "log_type warning",
        # run as root, mosquitto would drop to its own user, which cannot write here
        *(["user root"] if os.geteuid() == 0 else []), ""])


def _toml_table(d: dict[str, Any]) -> str:
    return "".join(f"{k} = {json.dumps(v)}\n" for k, v in d.items())


def site_config_text(site: str, data_dir: Path, mqtt_port: int, health_port: int,
                     store: dict[str, Any], quantities: dict[str, Any],
                     topic_prefix: str = "livinglab/v1") -> str:
    """One site's gateway config: its broker, its own data_dir, the city's one store.

    ``os-cache`` durability: N gateways fsyncing on one machine's disk would measure
    that disk, not the city (a real site's gateway keeps the default ``fsync``)."""
    gw = {"id": f"gw-{site}", "data_dir": str(data_dir), "health_port": health_port,
          "durability": "os-cache"}
    mqtt = {"host": HOST, "port": mqtt_port, "topic_prefix": topic_prefix}
    text = (f'site = "{site}"\n\n[gateway]\n{_toml_table(gw)}\n'
            f"[mqtt]\n{_toml_table(mqtt)}\n"
            f"[store]\n{_toml_table(store)}")
    for name, q in quantities.items():
        text += f"\n[quantities.{name}]\n{_toml_table(q)}"
    return text


def store_table(cfg: Config) -> dict[str, Any]:
    """The ``[store]`` keys the file set (paths made absolute), for every site's config."""
    d = cfg.store.model_dump(mode="json", exclude_unset=True, exclude_none=True)
    d["kind"] = cfg.store.kind
    if cfg.store.kind == "sqlite":
        d["path"] = str(cfg.store.path.resolve())
    return d


def store_url(cfg: Config) -> str:
    s = cfg.store
    if s.kind == "sqlite":
        return f"sqlite:{s.path.resolve()}"
    where = f"database {s.database}" if s.kind == "influxdb1" else f"bucket {s.bucket}"
    return f"{s.kind} {s.url} ({where})"


def metrics(port: int) -> dict[str, float]:
    """A gateway's /metrics as {name{labels}: value} (empty when it does not answer)."""
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}/metrics", timeout=2) as r:
            text = r.read().decode()
    except (urllib.error.URLError, OSError):
        return {}
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            head, _, value = line.rpartition(" ")
            with contextlib.suppress(ValueError):
                out[head] = float(value)
    return out


def total(m: dict[str, float], name: str) -> float:
    """The sum of a metric's samples over all its labels."""
    return sum(v for k, v in m.items() if k.split("{", 1)[0] == name)


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}/healthz", timeout=1) as r:
            return bool(r.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.5):
            return True
    except OSError:
        return False


@dataclass
class Site:
    """One site's broker and gateway processes."""

    name: str
    dir: Path
    mqtt_port: int
    health_port: int
    broker: asyncio.subprocess.Process | None = None
    gateway: asyncio.subprocess.Process | None = None
    final: dict[str, float] = field(default_factory=dict)
    gateway_rc: int | None = None

    def received(self) -> float:
        return metrics(self.health_port).get(RECEIVED, 0.0)


async def _spawn(argv: list[str], log: Path) -> asyncio.subprocess.Process:
    with open(log, "ab") as out:
        return await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.DEVNULL, stdout=out,
            stderr=asyncio.subprocess.STDOUT, start_new_session=True,
            preexec_fn=die_with_parent())


async def _stop(proc: asyncio.subprocess.Process | None, timeout: float) -> int | None:
    """SIGTERM to its process group, SIGKILL to the group after ``timeout``."""
    if proc is None:
        return None
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), timeout)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await asyncio.wait_for(proc.wait(), 5)
    return proc.returncode


async def _until(cond: Any, timeout: float, stop: asyncio.Event | None = None) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if await asyncio.to_thread(cond):
            return True
        if stop is not None and stop.is_set():
            return False
        await asyncio.sleep(0.1)
    return False


def _raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class City:
    """One run; :meth:`run` returns the exit code."""

    def __init__(self, opts: CityOptions, emit: Any = None) -> None:
        self.opts = opts
        self.emit = emit or (lambda line: print(line, flush=True))
        self.cfg = load_config(opts.config, need_site=False)
        self.temp = opts.data_dir is None
        self.dir = Path(tempfile.mkdtemp(prefix="livinglab-city-")) if opts.data_dir is None \
            else opts.data_dir.resolve()
        self.sites: list[Site] = []
        self.load: CityLoad | None = None
        self.mosquitto = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not os.access(self.mosquitto, os.X_OK):
            raise CityError("mosquitto not found (apt install mosquitto)")

    async def _start_site(self, name: str) -> Site:
        d = self.dir / name
        d.mkdir(parents=True, exist_ok=True)
        site = Site(name, d, free_port(), free_port())
        (d / "mosquitto.conf").write_text(broker_conf(site.mqtt_port, d))
        site.broker = await _spawn([self.mosquitto, "-c", str(d / "mosquitto.conf")],
                                   d / "mosquitto.log")
        cfg_path = d / "gateway.toml"
        cfg_path.touch(mode=0o600)  # the store's token or password may be in it
        quantities = {k: v.model_dump(mode="json") for k, v in self.cfg.quantities.items()}
        cfg_path.write_text(site_config_text(name, d / "var", site.mqtt_port, site.health_port,
                                             store_table(self.cfg), quantities,
                                             self.cfg.mqtt.topic_prefix))
        self.sites.append(site)
        return site

    async def _start_gateways(self, stop: asyncio.Event) -> None:
        for s in self.sites:
            if not await _until(lambda s=s: _port_open(s.mqtt_port), 10, stop):
                raise CityError(f"{s.name}: mosquitto did not listen on {s.mqtt_port} "
                                f"(see {s.dir / 'mosquitto.log'})")
            s.gateway = await _spawn([sys.executable, "-m", "gateway.cli", "gateway",
                                      "--config", str(s.dir / "gateway.toml")],
                                     s.dir / "gateway.log")
        for s in self.sites:
            if not await _until(lambda s=s: _healthy(s.health_port), START_S, stop):
                if stop.is_set():
                    return
                log = (s.dir / "gateway.log").read_text(errors="replace").strip()
                raise CityError(f"{s.name}: the gateway did not become healthy in {START_S:.0f}"
                                f" s: {log.splitlines()[-1] if log else 'no output'} "
                                f"(log {s.dir / 'gateway.log'})")

    async def run(self) -> int:
        _raise_fd_limit()  # a socket per device: thousands of them
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        t0 = time.monotonic()
        ok = False
        try:
            plans = plan_city(self.opts.sites, self.opts.per_site, self.opts.seed)
            for p in plans:
                await self._start_site(p.site)
            await self._start_gateways(stop)
            if not stop.is_set():
                self.load = CityLoad({s.name: (HOST, s.mqtt_port) for s in self.sites},
                                     [d for p in plans for d in p.devices],
                                     self.opts.interval_s, self.cfg.mqtt.topic_prefix)
                await self.load.start()
                self.emit(f"city: {len(self.sites)} sites x {self.opts.per_site} devices, every "
                          f"{self.opts.interval_s} s, into {store_url(self.cfg)}; "
                          f"dir {self.dir}; Ctrl-C stops")
                await self._watch(stop, t0)
            ok = True
        finally:
            await self._stop_all()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
        return self._summary(time.monotonic() - t0, ok)

    async def _watch(self, stop: asyncio.Event, t0: float) -> None:
        while not stop.is_set():
            if self.opts.duration is not None and time.monotonic() - t0 >= self.opts.duration:
                return
            for s in self.sites:
                for what, p in (("gateway", s.gateway), ("mosquitto", s.broker)):
                    if p is not None and p.returncode is not None:
                        raise CityError(f"{s.name}: {what} exited with code {p.returncode} "
                                        f"(see {s.dir / (what + '.log')})")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.5)

    async def _stop_all(self) -> None:
        """Devices (wills fire), then gateways once they have what was acked, then brokers."""
        if self.load is not None:
            await self.load.drop()
            for s in self.sites:
                acked = self.load.tallies[s.name].acked
                await _until(lambda s=s, a=acked: s.received() >= a, 10)
        for s in self.sites:
            s.final = await asyncio.to_thread(metrics, s.health_port)
        rcs = await asyncio.gather(*(_stop(s.gateway, GATEWAY_STOP_S) for s in self.sites))
        for s, rc in zip(self.sites, rcs, strict=True):
            s.gateway_rc = rc
        await asyncio.gather(*(_stop(s.broker, 10) for s in self.sites))

    def _summary(self, elapsed: float, ok: bool) -> int:
        self.emit(f"city stopped after {elapsed:.0f} s")
        clean = ok
        for s in self.sites:
            t = self.load.tallies.get(s.name, SiteTally()) if self.load else SiteTally()
            m = s.final
            clean = clean and s.gateway_rc == 0
            self.emit(f"  {s.name}: broker {HOST}:{s.mqtt_port}, gateway exit {s.gateway_rc}, "
                      f"{t.devices} devices, telemetry sent {t.sent} acked {t.acked}, "
                      f"gateway received {m.get(RECEIVED, 0):.0f} rejected "
                      f"{total(m, 'livinglab_rejections_total'):.0f}, points forwarded "
                      f"{total(m, 'livinglab_points_forwarded_total'):.0f}")
        self.emit(f"store: {store_url(self.cfg)}")
        if clean and self.temp:
            shutil.rmtree(self.dir, ignore_errors=True)
        else:
            self.emit(f"logs and configs: {self.dir}")
        return 0 if clean else 1
