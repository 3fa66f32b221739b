"""``livinglab sensorthings --config FILE [--host H] [--port P]``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .errors import SensorThingsError

ERRORS = (SensorThingsError,)


def register(subparsers: Any) -> None:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "sensorthings", help="a read-only OGC SensorThings API v1.1 over the shared store",
        description="Serve the shared store's stations and readings as an OGC SensorThings "
                    "API v1.1 (Sensing, read-only) at /v1.1 (docs/sensorthings.md).")
    p.add_argument("--config", type=Path, required=True, metavar="FILE",
                   help="a config with [store] (and optionally [sensorthings])")
    p.add_argument("--host", metavar="H",
                   help="bind address (default [sensorthings] host, 127.0.0.1)")
    p.add_argument("--port", type=int, metavar="P",
                   help="port (default [sensorthings] port, 8090; 0 picks a free one)")
    p.set_defaults(func=sensorthings_command)


def sensorthings_command(args: argparse.Namespace) -> int:
    from protocols.config import load_config

    from .server import run

    cfg = load_config(args.config, need_site=False)
    host = args.host or cfg.sensorthings.host
    port = cfg.sensorthings.port if args.port is None else args.port
    if not 0 <= port <= 65535:
        raise SensorThingsError(f"--port must be 0..65535, not {port}")
    run(cfg, host, port, lambda url: print(f"sensorthings: {url} (Ctrl-C stops)", flush=True))
    return 0
