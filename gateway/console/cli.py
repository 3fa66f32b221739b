"""``livinglab console --config FILE [--host H] [--port P]``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .errors import ConsoleError

ERRORS = (ConsoleError,)


def register(subparsers: Any) -> None:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "console", help="the fleet in a browser: devices, readings, rejections, live",
        description="Serve the fleet console (docs/console.md): read-only over the gateway's "
                    "data_dir, its /healthz, the broker's retained status and the store; "
                    "with [console] scope = \"city\", every site from the shared store alone.")
    p.add_argument("--config", type=Path, required=True, metavar="FILE",
                   help="the gateway's config file")
    p.add_argument("--host", metavar="H", help="bind address (default [console] host, "
                   "127.0.0.1; any other needs [console] token)")
    p.add_argument("--port", type=int, metavar="P", help="port (default [console] port, 8080)")
    p.set_defaults(func=console_command)


def console_command(args: argparse.Namespace) -> int:
    from protocols.config import load_config

    from .server import run

    # the city scope serves every site in the store: no `site` needed (interfaces, third turn)
    cfg = load_config(args.config, need_site=False)
    if cfg.console.scope != "city":
        cfg = load_config(args.config)  # the gateway scope serves one site: its error if none
    host = args.host or cfg.console.host
    port = cfg.console.port if args.port is None else args.port
    if not 0 <= port <= 65535:
        raise ConsoleError(f"--port must be 0..65535, not {port}")
    run(cfg, host, port, lambda url: print(f"console: {url} (Ctrl-C stops)", flush=True))
    return 0
