"""``livinglab fleet update``: the current ``firmware/`` sources, as version V, to devices.

Packs V per board, serves the packs over HTTP from this host, sends each device
its authenticated control message on its ``update`` topic, a wave of ``--wave``
devices at a time, and waits for each to report V running and confirmed. The
rollout stops after the first wave in which a device refused or rolled back.
One line per device; exit 0 only when every device ended on V (docs/ota.md).
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
from pathlib import Path
from typing import Any

import firmware
from protocols.config import load_config
from protocols.mqtt_tls import client_tls

from .fleet_plan import parse_settings
from .ota_pack import OtaError, pack, version_tuple
from .ota_rollout import Broker, Outcome, PackServer, Target, rollout


def register(sub: Any) -> None:
    p = sub.add_parser(
        "update", help="over-the-air firmware update of devices, in waves",
        description="Pack the current firmware/ sources as version V and update the named "
                    "devices over the air, N at a time; stop at the first refusal or rollback.")
    p.add_argument("--config", required=True, type=Path, help="livinglab TOML config")
    p.add_argument("--version", required=True, metavar="V", help="version to install, e.g. 0.2.0")
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--device", action="extend", nargs="+", metavar="ID", default=[],
                     help="device(s) to update (repeatable)")
    who.add_argument("--all", action="store_true",
                     help="every device of the inventory or with a status on the broker")
    p.add_argument("--wave", type=int, default=1, metavar="N",
                   help="devices updated at a time (default 1)")
    p.add_argument("--timeout", type=float, default=600.0, metavar="S",
                   help="seconds each wave may take to confirm (default 600)")
    p.set_defaults(func=update_command)


def update_command(args: argparse.Namespace) -> int:
    # provisioning owns the secrets store and the inventory; paho only when needed.
    from provisioning import otakey
    from provisioning.common import open_inventory
    from provisioning.settings import settings_from_config

    version_tuple(args.version)
    if args.wave < 1:
        raise OtaError(f"--wave must be at least 1, not {args.wave}")
    if args.timeout <= 0:
        raise OtaError(f"--timeout must be positive, not {args.timeout:g}")
    cfg = load_config(args.config)
    settings = settings_from_config(cfg)
    fleet = parse_settings(cfg.fleet)
    with open_inventory(settings) as inv:
        boards = {d.device: d.board for d in inv.list(include_retired=False)}
    # the operators' account (config and update topics), over the one MQTT TLS setup
    user, password = cfg.mqtt_operator
    broker = Broker(settings.mqtt_host, settings.mqtt_port, user, password, settings.prefix,
                    settings.site, client_tls(cfg))
    try:
        seen = broker.seen_devices()
        names = sorted(set(boards) | set(seen)) if args.all else list(dict.fromkeys(args.device))
        if not names:
            raise OtaError("no devices to update (none in the inventory or on the broker)")
        targets = []
        for name in names:
            status = broker.latest(name) or {}
            board = str(status.get("board") or boards.get(name) or "")
            targets.append(Target(name, board, otakey.load(settings.secrets_dir, name)))
        with tempfile.TemporaryDirectory(prefix="livinglab-ota-") as tmp:
            packs = {b: pack(args.version, b, Path(tmp))
                     for b in sorted({t.board for t in targets if t.board in firmware.BOARDS})}
            for bp in packs.values():
                print(f"packed {args.version} for {bp.board}: {bp.files} files, "
                      f"{bp.size} bytes", flush=True)
            host = fleet.ota_http_host or settings.device_mqtt_host
            server = PackServer(Path(tmp), host, fleet.ota_http_port, host)
            try:
                out = rollout(broker, targets, args.version, packs, server.url, args.wave,
                              args.timeout, _print)
            finally:
                server.close()
    finally:
        broker.close()
    confirmed = {o.device for o in out if o.ok}
    with open_inventory(settings) as inv:  # `livinglab devices` shows what now runs
        for dev in inv.list(include_retired=False):
            if dev.device in confirmed and dev.fw_version != args.version:
                inv.upsert(dev.model_copy(update={
                    "fw_version": args.version,
                    "fw_hash": hashlib.sha256(packs[dev.board].manifest).hexdigest()
                    if dev.board in packs else ""}))
    done = sum(1 for o in out if o.ok)
    print(f"{done}/{len(out)} devices on {args.version}", flush=True)
    return 0 if done == len(out) else 1


def _print(o: Outcome) -> None:
    print(f"{o.device}: {o.text}", flush=True)
