"""``livinglab devices``: the inventory joined with each device's live state.

Live state comes from the broker's retained ``status`` topics (a device's birth
message, replaced by its last will ``offline`` when it drops): subscribe for a
moment, collect what the broker holds, print one row per device with
online / offline / never-seen. ``--json`` prints the same for scripts.

Each device's current metadata (``livinglab device set``) is shown too, and a
device that has metadata but was never flashed here gets a row of its own.
Lives in provisioning (not devices) because it needs the broker watcher and the
settings that provisioning owns: devices/ no longer imports provisioning/.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from typing import Any

from devices.errors import DevicesError
from devices.inventory import Device, Meta

from .common import load_settings, open_inventory
from .errors import BrokerError

ERRORS: tuple[type[Exception], ...] = (DevicesError,)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("devices", help="the fleet inventory and each device's state",
                              description="List the device inventory with each device's "
                                          "last status from the broker (online, offline, "
                                          "never-seen).")
    p.add_argument("--config", default=None, metavar="FILE",
                   help="TOML config file (default: ./livinglab.toml when present)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--listen", type=float, default=1.5, metavar="S",
                   help="seconds to collect retained status messages (default 1.5)")
    p.add_argument("--all", action="store_true", help="include retired devices")
    p.set_defaults(func=_run)


def _meta_json(m: Meta | None) -> dict[str, Any] | None:
    if m is None:
        return None
    return {"deployment": m.deployment, "since": _when(m.at), "lat": m.lat, "lon": m.lon,
            "room": m.room, "zone": m.zone, "note": m.note}


def rows(devices: list[Device], live: dict[tuple[str, str], dict[str, Any]],
         seen: dict[str, tuple[str, float]], broker_ok: bool, now: float,
         meta: dict[str, Meta] | None = None, site: str = "") -> list[dict[str, Any]]:
    """One JSON-able row per device: inventory fields + state, last_status, last_seen,
    meta (current metadata or None); devices with metadata only get a row too."""
    meta = meta or {}
    known = {d.device for d in devices}
    devices = devices + [Device(device=d, site=site, board="-", provisioned_at=0.0)
                         for d in sorted(meta) if d not in known and site]
    out = []
    for dev in devices:
        status = live.get((dev.site, dev.device))
        if dev.retired:
            state = "retired"
        elif not broker_ok:
            state = "unknown"
        elif status is None:
            state = "never-seen"
        else:
            state = "online" if status.get("state") == "online" else "offline"
        last_seen = now if state == "online" else (seen[dev.device][1]
                                                   if dev.device in seen else None)
        row = dev.model_dump(mode="json")
        row["sensors"] = [s.device_entry() for s in dev.sensors]
        row.update(state=state, last_status=status, last_seen=last_seen,
                   meta=_meta_json(meta.get(dev.device)))
        out.append(row)
    return out


def _when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _where(r: dict[str, Any]) -> str:
    m = r.get("meta")
    if not m:
        return str(r["location"] or "-")
    parts = [f"{m['lat']:.5f},{m['lon']:.5f}"] if m["lat"] is not None else []
    parts += [x for x in (m["room"], m["zone"]) if x]
    return " ".join(parts or ["-"]) + f" (dep. {m['deployment']})"


def table(data: list[dict[str, Any]]) -> str:
    if not data:
        return "no devices in the inventory (provision one: livinglab device flash ...)"
    head = ("DEVICE", "SITE", "BOARD", "STATE", "LAST SEEN", "FW", "LOCATION")
    body = [(r["device"], r["site"], r["board"], r["state"], _when(r["last_seen"]),
             r["fw_version"] or "-", _where(r)) for r in data]
    widths = [max(len(str(x[i])) for x in [head, *body]) for i in range(len(head) - 1)]
    return "\n".join("  ".join(f"{str(c):<{w}}" for c, w in zip(r, widths, strict=False))
                     + "  " + str(r[-1]) for r in [head, *body])


def _run(args: argparse.Namespace) -> int:
    from .status import StatusWatcher, status_topic  # paho: not for `livinglab --help`

    settings = load_settings(args)
    with open_inventory(settings) as inv:
        devices = inv.list(include_retired=args.all)
        sites = sorted({d.site for d in devices} | {settings.site})
        live: dict[tuple[str, str], dict[str, Any]] = {}
        broker_ok = True
        try:
            with StatusWatcher(settings.mqtt_host, settings.mqtt_port,
                               settings.gateway_username, settings.gateway_password,
                               ca_file=settings.mqtt_ca_file,
                               cert_file=settings.mqtt_cert_file,
                               key_file=settings.mqtt_key_file) as w:
                w.start([status_topic(settings.prefix, s) for s in sites])
                for msg in w.collect(args.listen):
                    live[(msg.site, msg.device)] = msg.payload
        except BrokerError as exc:
            broker_ok = False
            print(f"livinglab: warning: {exc}; showing the inventory only", file=sys.stderr)
        now = time.time()
        known = {(d.site, d.device): d for d in devices}
        for key, payload in live.items():
            if key in known and payload.get("state") == "online":
                inv.record_seen(key[1], "online", now)
        data = rows(devices, live, inv.seen(), broker_ok, now, inv.current_meta(),
                    settings.site)
    if args.json:
        print(json.dumps({"site": settings.site, "broker_reachable": broker_ok,
                          "devices": data}, indent=1))
    else:
        print(table(data))
    return 0
