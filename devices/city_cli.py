"""``livinglab city simulate --config FILE --sites N --devices-per-site M``.

A city on one machine (see :mod:`devices.city` and docs/city.md): N brokers and
gateways, M simulated devices per site, all writing to the config's one store.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

from .city import CityError

ERRORS: tuple[type[Exception], ...] = (CityError,)
MAX_SITES = 99
MAX_DEVICES = 100_000


def register(subparsers: Any) -> None:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "city", help="a city on this machine: many sites writing to one store",
        description="Commands for a city of sites sharing one store (docs/city.md).")
    sub = p.add_subparsers(dest="city_command", metavar="COMMAND", required=True)
    s: argparse.ArgumentParser = sub.add_parser(
        "simulate", help="N sites (Mosquitto + gateway each) and M simulated devices per site",
        description="Start, for each of N sites, a Mosquitto broker and a livinglab gateway "
                    "(site city-01, city-02, ...) writing to the one store in FILE's [store], "
                    "and a CPython load model of M devices per site sending the firmware's "
                    "telemetry, statuses and last wills. Stops on Ctrl-C, SIGTERM or "
                    "--duration; prints a line per site and the store.")
    s.add_argument("--config", type=Path, required=True, metavar="FILE",
                   help="a config whose [store] (and [quantities]) every site uses")
    s.add_argument("--sites", type=int, required=True, metavar="N", help="number of sites")
    s.add_argument("--devices-per-site", type=int, required=True, metavar="M",
                   help="simulated devices per site")
    s.add_argument("--duration", type=float, metavar="S",
                   help="stop after S seconds (default: run until Ctrl-C)")
    s.add_argument("--interval", type=int, default=30, metavar="S",
                   help="device sampling period in seconds (default 30, the firmware's)")
    s.add_argument("--data-dir", type=Path, metavar="DIR",
                   help="where brokers and gateways keep their files (default: a temp dir, "
                        "removed after a clean run)")
    s.add_argument("--seed", type=int, default=1, help="seed of the simulated values")
    s.set_defaults(func=simulate_command)


def simulate_command(args: argparse.Namespace) -> int:
    from .city import City, CityOptions

    if not 1 <= args.sites <= MAX_SITES:
        raise CityError(f"--sites must be 1..{MAX_SITES}, not {args.sites}")
    if not 1 <= args.devices_per_site <= MAX_DEVICES:
        raise CityError(f"--devices-per-site must be 1..{MAX_DEVICES}, "
                        f"not {args.devices_per_site}")
    if args.duration is not None and args.duration <= 0:
        raise CityError(f"--duration must be positive, not {args.duration}")
    if not 1 <= args.interval <= 86400:
        raise CityError(f"--interval must be 1..86400 seconds, not {args.interval}")
    opts = CityOptions(config=args.config, sites=args.sites, per_site=args.devices_per_site,
                       duration=args.duration, interval_s=args.interval,
                       data_dir=args.data_dir, seed=args.seed)
    return asyncio.run(City(opts).run())
