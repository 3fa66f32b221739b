"""``livinglab doctor``: check a gateway host, one line per check.

    livinglab doctor --config FILE [--mosquitto-conf FILE] [--timeout S]

Exit 0 if nothing failed (warnings allowed), 1 if any check failed.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

ERRORS: tuple[type[Exception], ...] = ()


def register(subparsers: Any) -> None:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "doctor", help="check this host for running a gateway (one line per check)",
        description="Check a gateway host: config, data_dir and free space, broker login and "
                    "session, the local Mosquitto config, the store, the clock. One line per "
                    "check, 'ok|warn|fail <what> (<fix>)'; exit 1 if any check fails. "
                    "Writes one probe point to an InfluxDB store (see docs/pi.md).")
    p.add_argument("--config", required=True, metavar="FILE", help="TOML config file")
    p.add_argument("--mosquitto-conf", default=None, metavar="FILE",
                   help="the broker's config to check (default /etc/mosquitto/mosquitto.conf "
                        "and its include_dir, when the broker is on this host)")
    p.add_argument("--timeout", type=float, default=5.0, metavar="S",
                   help="seconds each network probe may take (default 5)")
    p.set_defaults(func=_doctor)


def _doctor(args: argparse.Namespace) -> int:
    from gateway.ops.doctor import CHECKS, Host

    host = Host.load(Path(args.config),
                     Path(args.mosquitto_conf) if args.mosquitto_conf else None,
                     max(args.timeout, 0.1))
    failed = False
    for check in CHECKS:  # print as we go: a slow probe should not hide the others
        finding = check(host)
        if finding is not None:
            print(finding.line(), flush=True)
            failed |= finding.level == "fail"
    return 1 if failed else 0
