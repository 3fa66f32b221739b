"""The ``livinglab`` console script: one top-level handler, sub-commands per package.

Each package that owns commands has a ``cli`` module with
``register(subparsers) -> None`` (each parser sets ``func(args) -> int``) and
``ERRORS``: the exception types it raises for a user to read. Those, and OS-level
failures, become one line ``livinglab: <what> (<fix>)`` on stderr and exit 2;
never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from types import ModuleType

from .errors import ConfigError, GatewayError


def command_modules() -> list[ModuleType]:
    """The packages' cli modules, in --help order. Imported here, not by string, so a
    missing or broken one fails loudly (and import-linter sees the dependency); each
    imports its heavy libraries (pyarrow, starlette, cryptography...) inside the
    commands that use them, so ``livinglab gateway`` starts fast."""
    from devices import city_cli, demo_cli, fleet_cli, sensor_cli
    from provisioning import broker_cli, devices_cli
    from provisioning import cli as provisioning_cli

    from . import gateway_cli
    from .alerts import cli as alerts_cli
    from .console import cli as console_cli
    from .opendata import cli as opendata_cli
    from .ops import doctor_cli
    from .sensorthings import cli as sensorthings_cli

    return [demo_cli, gateway_cli, console_cli, fleet_cli, provisioning_cli, devices_cli,
            broker_cli, doctor_cli, sensor_cli, opendata_cli, city_cli, alerts_cli,
            sensorthings_cli]


def modules_for(argv: Sequence[str]) -> list[ModuleType]:
    """The cli modules a command line needs: ``livinglab gateway ...`` only its own, so
    the gateway process starts without importing every other package's commands (the
    start-up path of issue 21: first point within 0.5 s of start); anything else, and
    ``--help``, gets them all."""
    if argv and argv[0] == "gateway":
        from . import gateway_cli

        return [gateway_cli]
    return command_modules()


def build_parser(mods: Sequence[ModuleType]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="livinglab",
        description="Living lab sensor fleet: gateway, simulated fleet, provisioning.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for mod in mods:
        mod.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    mods = modules_for(sys.argv[1:] if argv is None else argv)
    errors: tuple[type[BaseException], ...] = (GatewayError, ConfigError)
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
