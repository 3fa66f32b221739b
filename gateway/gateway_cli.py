"""``livinglab gateway``: run the gateway, or list what it rejected.

    livinglab gateway --config FILE [--connect-timeout S] [--verbose]
    livinglab gateway rejected --config FILE [--limit N] [--json]
    livinglab gateway install-service --config FILE [--user U] [--print]

The broker may come up after the gateway (boot order on a Pi), so an
unreachable broker is retried forever by default, with one clear log line;
``--connect-timeout S`` makes the first connect give up after S seconds and
exit 2 with that line instead (for scripts and CI).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import logging
import sys
from typing import Any

from gateway.ingest.mqtt import BrokerUnreachable
from gateway.ops.health import HealthPortBusy
from gateway.ops.service import add_install_args
from protocols.config import load_config

ERRORS: tuple[type[Exception], ...] = (BrokerUnreachable, HealthPortBusy)


def register(subparsers: Any) -> None:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "gateway", help="run the MQTT -> store gateway in the foreground",
        description="Run one gateway until SIGTERM/SIGINT (exits 0 within 10 s; "
                    "unflushed readings stay in the durable buffer).")
    p.add_argument("--config", required=False, default=None, metavar="FILE",
                   help="TOML config file")
    p.add_argument("--connect-timeout", type=float, default=0.0, metavar="S",
                   help="give up (exit 2) if the broker is unreachable for S seconds at start "
                        "(default 0: keep retrying)")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    p.set_defaults(func=_run)
    sub = p.add_subparsers(dest="gateway_command", metavar="SUBCOMMAND")
    r = sub.add_parser("rejected", help="list rejected messages (newest first)",
                       description="List the gateway's quarantine of rejected messages, "
                                   "newest first.")
    r.add_argument("--config", dest="rejected_config", default=None, metavar="FILE",
                   help="TOML config file")
    r.add_argument("--limit", type=int, default=50, metavar="N", help="at most N (default 50)")
    r.add_argument("--json", action="store_true", help="one JSON object per line")
    r.set_defaults(func=_rejected)
    s = sub.add_parser("install-service", help="install the gateway as a systemd service",
                       description="Write a systemd unit for this gateway (Type=notify, "
                                   "WatchdogSec, Restart=always, its own user, read-only "
                                   "system with data_dir writable), create the user, and "
                                   "reload systemd. Needs root unless --print. See docs/pi.md.")
    add_install_args(s)
    s.set_defaults(func=_install_service)


def _config_path(args: argparse.Namespace, parser_attr: str) -> str:
    path = getattr(args, parser_attr, None) or args.config
    if not path:
        from .errors import ConfigError

        raise ConfigError("no config file given (pass --config FILE)")
    return str(path)


def _run(args: argparse.Namespace) -> int:
    cfg = load_config(_config_path(args, "config"))
    logging.basicConfig(stream=sys.stderr,
                        level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from .app import run_gateway

    return asyncio.run(run_gateway(cfg, args.connect_timeout))


def _rejected(args: argparse.Namespace) -> int:
    cfg = load_config(_config_path(args, "rejected_config"))
    from gateway.buffer.core import DurableBuffer

    path = cfg.buffer_file
    if not path.exists():
        print("no rejected messages (the gateway has not run with this data_dir yet)",
              file=sys.stderr)
        return 0
    buf = DurableBuffer(path, cfg.gateway.buffer_max_bytes, cfg.gateway.quarantine_max)
    try:
        items = buf.list_quarantine(max(args.limit, 0))
    finally:
        buf.close()
    for it in items:
        when = dt.datetime.fromtimestamp(it.at, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        if args.json:
            print(json.dumps({"id": it.id, "at": it.at, "topic": it.topic, "device": it.device,
                              "reason": it.reason, "detail": it.detail,
                              "payload": it.payload.decode("utf-8", "replace"),
                              "length": it.length}))  # the payload is its first 2 KiB
        else:
            print(f"{when}  {it.device or '-':<20} {it.reason:<17} {it.detail}")
    if not items and not args.json:
        print("no rejected messages", file=sys.stderr)
    return 0


def _install_service(args: argparse.Namespace) -> int:
    from pathlib import Path

    from gateway.ops import service

    path = Path(_config_path(args, "service_config"))
    cfg = load_config(path)
    if args.print_only:
        sys.stdout.write(service.unit_text(cfg, path, args.user))
        for line in service.problems(cfg, path, args.user):
            print(f"livinglab: warning: {line}", file=sys.stderr)
        return 0
    done = service.install(cfg, path, args.user, Path(args.unit_dir))
    for line in service.problems(cfg, path, args.user):
        print(f"livinglab: warning: {line}", file=sys.stderr)
    if done.created_user:
        print(f"created system user {args.user}")
    print(f"wrote {done.unit}")
    name = done.unit.stem
    if not done.reloaded:
        print("run: sudo systemctl daemon-reload")
    print(f"start it now and at every boot: sudo systemctl enable --now {name}\n"
          f"watch it: systemctl status {name}; journalctl -u {name} -f")
    return 0
