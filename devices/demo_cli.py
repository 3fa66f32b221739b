"""``livinglab demo [--duration S] [--config FILE] [--devices N]``.

The whole system on one machine; see :mod:`devices.demo` and docs/demo.md.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

from .fleet_errors import FleetError

ERRORS: tuple[type[Exception], ...] = (FleetError,)


def register(subparsers: Any) -> None:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "demo", help="the whole system on this machine, readings shown live",
        description="An embedded MQTT broker, a simulated fleet running the real firmware, "
                    "a gateway and the embedded SQLite store, with a live view of readings "
                    "arriving. With --config, uses that config's broker and store instead.")
    p.add_argument("--duration", type=float, metavar="S",
                   help="stop after S seconds (default: run until Ctrl-C)")
    p.add_argument("--config", type=Path, metavar="FILE",
                   help="use this config's MQTT broker and store instead of embedded ones")
    p.add_argument("--devices", type=int, metavar="N",
                   help="N devices spread over air/light/flow (default: 2 air, 1 light, 1 flow)")
    p.add_argument("--interval", type=int, default=2, metavar="S",
                   help="device sampling period in seconds (default 2)")
    p.add_argument("--data-dir", type=Path, default=Path("var/demo"), metavar="DIR",
                   help="where the demo keeps its store, logs and device flash dirs "
                        "(default ./var/demo; its store is emptied at start)")
    p.set_defaults(func=demo_command)


def demo_command(args: argparse.Namespace) -> int:
    from .demo import Demo, DemoOptions

    if args.duration is not None and args.duration <= 0:
        raise FleetError(f"--duration must be positive, not {args.duration}")
    if args.devices is not None and args.devices < 1:
        raise FleetError(f"--devices must be at least 1, not {args.devices}")
    if not 1 <= args.interval <= 86400:
        raise FleetError(f"--interval must be 1..86400 seconds, not {args.interval}")
    opts = DemoOptions(data_dir=args.data_dir, duration=args.duration, devices=args.devices,
                       interval_s=args.interval, config=args.config)
    return asyncio.run(Demo(opts).run())
