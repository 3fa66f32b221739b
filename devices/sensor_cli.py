"""``livinglab sensor new NAME --bus i2c|uart|pin``: scaffold a new sensor kind.

See :mod:`devices.scaffold` for what is written and docs/new-sensor.md for the
walk-through from wiring to readings in the store.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import firmware
from protocols.config import load_config
from protocols.quantities import BUILTIN, Registry
from protocols.reference import render_quantities
from protocols.schema import site_telemetry_schema

from .errors import DevicesError
from .scaffold import ScaffoldError, plan, write

ERRORS: tuple[type[Exception], ...] = (DevicesError,)
DEFAULT_CONFIG = Path("livinglab.toml")
ROOT = firmware.FIRMWARE_DIR.parent


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("sensor", help="add a sensor kind (driver, twin, checks)")
    sub = p.add_subparsers(dest="sensor_command", metavar="ACTION", required=True)
    n = sub.add_parser("new", help="scaffold a driver, its simulated twin and its checks",
                       description="Write firmware/ll/drivers/NAME.py, its twin "
                                   "firmware/ll/sim/twin_NAME.py, datasheet-vector checks "
                                   "tests/firmware/mp/sensors/check_NAME.py and the catalogue "
                                   "entry devices/sensors/NAME.toml. They run as generated; "
                                   "then replace the placeholder protocol with the datasheet's.")
    n.add_argument("name", metavar="NAME", help="sensor kind, e.g. sen0232 or soil_probe")
    n.add_argument("--bus", required=True, choices=["i2c", "uart", "pin"],
                   help="how it is wired: I2C, a UART, or an ADC pin")
    n.add_argument("--quantity", action="append", default=None, metavar="Q",
                   help="what it measures (repeat; built-in or [quantities.Q] of --config); "
                        "default: temperature, as a placeholder")
    n.add_argument("--address", type=lambda s: int(s, 0), default=0x40,
                   help="I2C address (default 0x40)")
    n.add_argument("--description", default="", help="one line for the catalogue")
    n.add_argument("--config", type=Path, default=None, metavar="FILE",
                   help=f"config whose [quantities] the sensor may measure (default: "
                        f"./{DEFAULT_CONFIG} when present)")
    n.add_argument("--root", type=Path, default=ROOT,
                   help="the livinglab checkout to write into (default: this one)")
    n.set_defaults(func=_new)

    q = sub.add_parser("quantities", help="the site's quantity table (built-ins + [quantities])",
                       description="Print every quantity the site's gateway accepts (unit, "
                                   "measurement, range, origin) as a Markdown table, or with "
                                   "--schema the site's telemetry JSON Schema.")
    q.add_argument("--config", type=Path, default=None, metavar="FILE",
                   help=f"config file (default: ./{DEFAULT_CONFIG} when present)")
    q.add_argument("--schema", action="store_true",
                   help="print the telemetry JSON Schema extended with the site's quantities")
    q.set_defaults(func=_quantities)


def _registry(args: argparse.Namespace) -> Registry:
    path: Path | None = args.config
    if path is None and DEFAULT_CONFIG.exists():
        path = DEFAULT_CONFIG
    return load_config(path).registry if path is not None else BUILTIN


def _quantities(args: argparse.Namespace) -> int:
    registry = _registry(args)
    if args.schema:
        print(json.dumps(site_telemetry_schema(registry), indent=2, ensure_ascii=False))
    else:
        print("\n".join(render_quantities(registry)))
    return 0


def _new(args: argparse.Namespace) -> int:
    registry = _registry(args)
    root: Path = args.root
    if not (root / "firmware" / "ll" / "drivers").is_dir() or \
            not (root / "tests" / "firmware" / "mp").is_dir():
        raise ScaffoldError(f"{root} is not a livinglab checkout with firmware/ and tests/ "
                            "(pass --root DIR)")
    known = {p.stem for p in (root / "devices" / "sensors").glob("*.toml")}
    scaffold = plan(args.name, args.bus, args.quantity or ["temperature"], registry,
                    address=args.address, description=args.description, known=known)
    for p in write(scaffold, root):
        print(f"created {p.relative_to(root)}")
    site = [q for q in scaffold.files if q.endswith(".toml")]
    print(f"next: fill in the register logic (search PLACEHOLDER), run "
          f"`scripts/test -k {args.name}`; see docs/new-sensor.md ({site[0]} lists what "
          "it measures)")
    return 0
