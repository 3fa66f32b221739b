"""``livinglab devices``: the inventory joined with each device's live state.

Live state comes from the broker's retained ``status`` topics (a device's birth
message, replaced by its last will ``offline`` when it drops): subscribe for a
moment, collect what the broker holds, print one row per device with
online / offline / never-seen. ``--json`` prints the same for scripts.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from typing import Any

from .errors import DevicesError
from .inventory import Device

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


def rows(devices: list[Device], live: dict[tuple[str, str], dict[str, Any]],
         seen: dict[str, tuple[str, float]], broker_ok: bool, now: float) -> list[dict[str, Any]]:
    """One JSON-able row per device: inventory fields + state, last_status, last_seen."""
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
        row.update(state=state, last_status=status, last_seen=last_seen)
        out.append(row)
    return out


def _when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def table(data: list[dict[str, Any]]) -> str:
    if not data:
        return "no devices in the inventory (provision one: livinglab device flash ...)"
    head = ("DEVICE", "SITE", "BOARD", "STATE", "LAST SEEN", "FW", "LOCATION")
    body = [(r["device"], r["site"], r["board"], r["state"], _when(r["last_seen"]),
             r["fw_version"] or "-", r["location"] or "-") for r in data]
    widths = [max(len(str(x[i])) for x in [head, *body]) for i in range(len(head) - 1)]
    return "\n".join("  ".join(f"{str(c):<{w}}" for c, w in zip(r, widths, strict=False))
                     + "  " + str(r[-1]) for r in [head, *body])


def _run(args: argparse.Namespace) -> int:
    # provisioning owns the config sections and the broker client; imported here so
    # `livinglab --help` does not pay for paho.
    from provisioning.common import load_settings, open_inventory
    from provisioning.errors import BrokerError
    from provisioning.status import StatusWatcher, status_topic

    settings = load_settings(args)
    with open_inventory(settings) as inv:
        devices = inv.list(include_retired=args.all)
        sites = sorted({d.site for d in devices} | {settings.site})
        live: dict[tuple[str, str], dict[str, Any]] = {}
        broker_ok = True
        try:
            with StatusWatcher(settings.mqtt_host, settings.mqtt_port,
                               settings.gateway_username, settings.gateway_password,
                               ca_file=settings.mqtt_ca_file) as w:
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
        data = rows(devices, live, inv.seen(), broker_ok, now)
    if args.json:
        print(json.dumps({"site": settings.site, "broker_reachable": broker_ok,
                          "devices": data}, indent=1))
    else:
        print(table(data))
    return 0
