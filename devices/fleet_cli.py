"""``livinglab fleet simulate``: N real-firmware devices against the configured broker.

Prints one line per device started, a summary every few seconds (telemetry seen
per device, counted by an observer subscription, so a technician sees at a
glance who is silent), and stops cleanly on Ctrl-C, SIGTERM or ``--duration``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiomqtt

from protocols.config import Config, load_config
from provisioning import otakey
from provisioning.settings import settings_from_config

from .fleet import Fleet, FleetEvent
from .fleet_errors import BrokerUnreachable, FleetError
from .fleet_monitor import Tally, cancel, port_open, watch
from .fleet_plan import (
    BrokerTarget,
    broker_target,
    device_config,
    local_tz_h,
    parse_settings,
    plan_round_robin,
)

ERRORS: tuple[type[Exception], ...] = (FleetError,)


def register(subparsers: Any) -> None:
    fleet = subparsers.add_parser("fleet", help="simulated device fleet",
                                  description="Simulated devices running the real firmware.")
    sub = fleet.add_subparsers(dest="fleet_command", metavar="ACTION", required=True)
    sim = sub.add_parser(
        "simulate", help="run N simulated devices against the configured broker",
        description="Run N devices, each the real firmware under the MicroPython unix "
                    "port with simulated sensors, against the [mqtt] broker of the config.")
    sim.add_argument("--config", required=True, type=Path, help="livinglab TOML config")
    sim.add_argument("--devices", required=True, type=int, metavar="N",
                     help="number of devices, spread over air/light/flow kinds")
    sim.add_argument("--interval", type=int, metavar="S",
                     help="sampling period in seconds (default: [fleet] interval_s, 30)")
    sim.add_argument("--duration", type=float, metavar="S",
                     help="stop after S seconds (default: run until Ctrl-C/SIGTERM)")
    sim.add_argument("--summary-every", type=float, default=10.0, metavar="S",
                     help="seconds between summary lines (default 10)")
    sim.set_defaults(func=simulate_command)
    from . import ota_cli

    ota_cli.register(sub)


async def probe_broker(target: BrokerTarget, protocol: str, timeout: float = 5.0) -> None:
    """Connect once with the configured credentials; a refusal is a one-line error."""
    if not port_open(target.host, target.port):
        raise BrokerUnreachable(target.host, target.port, "connection refused")
    version = aiomqtt.ProtocolVersion.V5 if protocol == "5" else aiomqtt.ProtocolVersion.V311
    try:
        async with aiomqtt.Client(target.host, target.port, username=target.username or None,
                                  password=target.password or None, protocol=version,
                                  timeout=timeout, tls_context=target.tls_context()):
            pass
    except aiomqtt.MqttError as exc:
        raise BrokerUnreachable(target.host, target.port, str(exc)) from None


def summary_line(elapsed: float, fleet: Fleet, tally: Tally, interval_s: int) -> str:
    """One line: who runs, how much telemetry, who has gone quiet."""
    now = time.time()
    quiet = [d.spec.device for d in fleet.devices
             if (seen := tally.devices.get(d.spec.device)) is None
             or seen.last_seen is None or now - seen.last_seen > 3 * interval_s + 5]
    counts = [tally.devices[d.spec.device].messages if d.spec.device in tally.devices else 0
              for d in fleet.devices]
    per = (f"{min(counts)}..{max(counts)} per device" if counts else "no devices")
    gaps = sum(s.seq_gaps for s in tally.devices.values())
    silent = ", ".join(quiet[:8]) + (" ..." if len(quiet) > 8 else "") if quiet else "none"
    return (f"[{elapsed:5.0f}s] {fleet.running()}/{len(fleet.devices)} running, "
            f"{fleet.restarts()} restarts | telemetry {tally.total()} ({per}), "
            f"seq gaps {gaps} | silent: {silent}")


def _print(line: str) -> None:
    print(line, flush=True)


async def run_simulation(cfg: Config, devices: int, interval_s: int | None,
                         duration: float | None, summary_every: float,
                         emit: Callable[[str], None] = _print) -> int:
    """Prepare, start and supervise the fleet until a signal or the duration."""
    settings = parse_settings(cfg.fleet)
    interval = interval_s or settings.interval_s
    if not 1 <= interval <= 86400:
        raise FleetError(f"--interval must be 1..86400 seconds, not {interval}")
    specs = plan_round_robin(devices, settings.seed)
    target = broker_target(cfg)
    await probe_broker(target, cfg.mqtt.protocol)
    run_dir = Path(settings.run_dir) if settings.run_dir else cfg.gateway.data_dir / "fleet"

    secrets_dir = settings_from_config(cfg).secrets_dir

    def configure(spec: Any) -> dict[str, Any]:
        ota = {"key": otakey.ensure(secrets_dir, spec.device),
               "confirm_after_s": settings.ota_confirm_after_s}
        return device_config(spec, site=cfg.site, broker=target, interval_s=interval,
                             profile=settings.profile,
                             wifi=cfg.wifi.model_dump(exclude_defaults=True), tz_h=local_tz_h(),
                             extra_sensors=settings.extra_sensors.get(spec.kind, ()),
                             ota=ota)

    def on_event(ev: FleetEvent) -> None:
        if ev.kind != "stopped":
            emit(ev.text)

    fleet = Fleet(specs, run_dir, configure, heapsize=settings.heapsize,
                  restart=settings.restart, max_backoff_s=settings.max_backoff_s,
                  on_event=on_event, files=target.device_files())
    fleet.prepare()
    emit(f"fleet: {len(specs)} devices, site {cfg.site}, broker {target.host}:{target.port}, "
         f"every {interval} s, flash dirs under {run_dir}")
    planned = {s.device for s in specs}

    def on_state(device: str, status: dict[str, Any]) -> None:
        if device not in planned:
            return
        extra = ", ".join(f"{k} {status[k]}" for k in ("fw", "boot", "heap_free") if k in status)
        emit(f"{device} {status.get('state', '?')}{f' ({extra})' if extra else ''}")

    tally = Tally(target.prefix, cfg.site, on_state=on_state)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    started = time.monotonic()
    subscribed = asyncio.Event()
    monitor = asyncio.create_task(watch(target, tally, protocol=cfg.mqtt.protocol,
                                        ready=subscribed))
    try:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(subscribed.wait(), 5)
        await fleet.start()
        while not stop.is_set():
            left = None if duration is None else duration - (time.monotonic() - started)
            if left is not None and left <= 0:
                break
            wait = summary_every if left is None else min(summary_every, left)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), wait)
            elapsed = time.monotonic() - started
            if not stop.is_set() and (duration is None or elapsed < duration - 0.05):
                emit(summary_line(elapsed, fleet, tally, interval))
    finally:
        await fleet.stop()
        await cancel(monitor)
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    emit(summary_line(time.monotonic() - started, fleet, tally, interval))
    emit(f"fleet stopped: {len(specs)} devices, {tally.total()} telemetry messages seen, "
         f"{fleet.restarts()} restarts, pids {' '.join(str(p) for p in fleet.pids)}")
    return 0


def simulate_command(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    if args.devices < 1:
        raise FleetError(f"--devices must be at least 1, not {args.devices}")
    if args.duration is not None and args.duration <= 0:
        raise FleetError(f"--duration must be positive, not {args.duration}")
    return asyncio.run(run_simulation(cfg, args.devices, args.interval, args.duration,
                                      max(1.0, args.summary_every)))
