"""``livinglab device set``: a device's metadata (location, room, zone, note), dated.

Any device id is accepted, flashed here or not. Each call records the device's
full metadata as of now; a new location or room starts a new deployment (see
:class:`devices.inventory.Meta`). ``livinglab devices`` and the exports show it.
"""

from __future__ import annotations

import argparse
import math
from datetime import UTC, datetime
from pathlib import Path

from protocols.config import load_config
from protocols.ids import is_id

from .errors import DevicesError
from .inventory import Inventory, Meta

__all__ = ["add_set_parser", "describe_meta", "parse_location"]


class MetadataError(DevicesError):
    """Bad metadata on the command line."""


def parse_location(text: str) -> tuple[float, float]:
    """``LAT,LON`` in decimal degrees (WGS 84) -> (lat, lon)."""
    parts = text.split(",")
    try:
        if len(parts) != 2:
            raise ValueError
        lat, lon = float(parts[0]), float(parts[1])
    except ValueError:
        raise MetadataError(f"--location {text!r} is not LAT,LON "
                            "(decimal degrees, e.g. 52.0116,4.3571)") from None
    if not (math.isfinite(lat) and math.isfinite(lon) and -90 <= lat <= 90
            and -180 <= lon <= 180):
        raise MetadataError(f"--location {text!r} is outside -90..90, -180..180 "
                            "(latitude first, then longitude)")
    return lat, lon


def describe_meta(m: Meta) -> str:
    where = f"{m.lat:.6f},{m.lon:.6f}" if m.lat is not None and m.lon is not None else "-"
    since = datetime.fromtimestamp(m.at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    extra = "".join(f" {k}={v!r}" for k, v in (("room", m.room), ("zone", m.zone),
                                               ("note", m.note)) if v)
    return f"{m.device}: deployment {m.deployment} since {since} at {where}{extra}"


def add_set_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    s = sub.add_parser("set", help="set a device's location, room, zone or note (dated)",
                       description="Record device metadata in the inventory. Every change "
                                   "is kept with its date; a new --location or --room "
                                   "starts a new deployment.")
    s.add_argument("--config", required=True, type=Path, metavar="FILE",
                   help="livinglab TOML config (the inventory is in [gateway] data_dir)")
    s.add_argument("--device", required=True, help="device id, e.g. air-0001")
    s.add_argument("--location", default=None, metavar="LAT,LON",
                   help="WGS 84 decimal degrees, e.g. 52.0116,4.3571")
    s.add_argument("--room", default=None)
    s.add_argument("--zone", default=None)
    s.add_argument("--note", default=None)
    s.set_defaults(func=_set)


def _set(args: argparse.Namespace) -> int:
    if not is_id(args.device):
        raise MetadataError(f"device id {args.device!r} is not valid "
                            "(lowercase letters, digits and '-', at most 63)")
    changes: dict[str, object] = {}
    if args.location is not None:
        changes["lat"], changes["lon"] = parse_location(args.location)
    for key in ("room", "zone", "note"):
        value = getattr(args, key)
        if value is not None:
            changes[key] = value
    if not changes:
        raise MetadataError("nothing to set (give --location, --room, --zone or --note)")
    cfg = load_config(args.config)
    with Inventory.in_data_dir(cfg.gateway.data_dir) as inv:
        meta = inv.set_meta(args.device, changes)
    print(describe_meta(meta))
    return 0
