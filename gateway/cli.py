"""The ``livinglab`` console script: one top-level handler, sub-commands per package.

Each package that owns commands has a ``cli`` module with
``register(subparsers) -> None`` (each parser sets ``func(args) -> int``) and
``ERRORS``: the exception types it raises for a user to read. Those, and OS-level
failures, become one line ``livinglab: <what> (<fix>)`` on stderr and exit 2;
never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from types import ModuleType

from .errors import GatewayError

# Packages whose cli module adds sub-commands, in --help order.
COMMAND_MODULES = (
    "devices.demo_cli",
    "gateway.gateway_cli",
    "gateway.console.cli",
    "devices.fleet_cli",
    "provisioning.cli",
    "provisioning.devices_cli",
    "provisioning.broker_cli",
    "gateway.doctor_cli",
    "devices.sensor_cli",
    "gateway.opendata.cli",
    "gateway.alerts.cli",
)


def _load(names: Sequence[str]) -> list[ModuleType]:
    mods = []
    for name in names:
        try:
            mods.append(importlib.import_module(name))
        except ModuleNotFoundError as exc:
            if exc.name != name:  # the module exists but something it needs is missing
                raise
    return mods


def build_parser(mods: Sequence[ModuleType]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="livinglab",
        description="Living lab sensor fleet: gateway, simulated fleet, provisioning.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for mod in mods:
        mod.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    mods = _load(COMMAND_MODULES)
    errors: tuple[type[BaseException], ...] = (GatewayError,)
    for mod in mods:
        errors += tuple(getattr(mod, "ERRORS", ()))
    parser = build_parser(mods)
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
        return code
    except KeyboardInterrupt:
        return 130
    except errors as exc:
        print(f"livinglab: {exc}", file=sys.stderr)
        return 2
    except PermissionError as exc:
        print(f"livinglab: permission denied: {exc.filename or exc} "
              "(check file ownership or run as the right user)", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"livinglab: {exc.strerror or exc}"
              f"{': ' + str(exc.filename) if exc.filename else ''}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
