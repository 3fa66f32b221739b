"""``livinglab alerts``: evaluate the alert rules over the shared store.

    livinglab alerts --config FILE [--once] [--verbose]
    livinglab alerts install-service --config FILE [--user U] [--print] [--unit-dir DIR]

``--once``: one evaluation, one sorted line per firing alert on stdout, sent to
Alertmanager only when ``[alerts] alertmanager_url`` is set, state read but never
written, exit 0. Without ``--once`` it runs as a service and needs the URL.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from pathlib import Path
from typing import Any

from gateway.ops.service import add_install_args
from protocols.config import Config, load_config

from ..errors import ConfigError
from ..stores.centre import CentreReader
from ..stores.reading import StoreUnreadable
from .engine import Engine
from .errors import AlertsError
from .state import load_state

ERRORS: tuple[type[Exception], ...] = (AlertsError, StoreUnreadable)


def register(subparsers: Any) -> None:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "alerts", help="evaluate alert rules over the shared store, send them to Alertmanager",
        description="Evaluate the built-in alert rules and [[alerts.threshold]] over every "
                    "site in the store, every [alerts] interval_s, and send firing and "
                    "resolved alerts to Alertmanager ([alerts] alertmanager_url). "
                    "See docs/alerts.md.")
    p.add_argument("--config", default=None, metavar="FILE", help="TOML config file")
    p.add_argument("--once", action="store_true",
                   help="evaluate once, print one line per firing alert, exit 0 (sends only "
                        "if alertmanager_url is set; never writes the state file)")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    p.set_defaults(func=_run)
    sub = p.add_subparsers(dest="alerts_command", metavar="SUBCOMMAND")
    s = sub.add_parser("install-service", help="install `livinglab alerts` as a systemd service",
                       description="Write a systemd unit for the alerts evaluator (Type=notify, "
                                   "WatchdogSec, Restart=always, its own user, only the state "
                                   "file's directory writable) and reload systemd. Needs root "
                                   "unless --print.")
    add_install_args(s)
    s.set_defaults(func=_install_service)


def _config(path: str | None) -> Config:
    if not path:
        raise ConfigError("no config file given (pass --config FILE)")
    return load_config(path, need_site=False)


def make_reader(cfg: Config) -> CentreReader:
    """The centre reader of the config's store, the same the city console uses."""
    from ..stores.readers import make_centre_reader

    return make_centre_reader(cfg)


def _run(args: argparse.Namespace) -> int:
    cfg = _config(args.config)
    logging.basicConfig(stream=sys.stderr, level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not args.once and not cfg.alerts.alertmanager_url:
        raise ConfigError("config key 'alerts.alertmanager_url': the alerts service needs one "
                          "(e.g. \"http://127.0.0.1:9093\"; --once runs without)")
    state = load_state(cfg.alerts_state_file)
    reader = make_reader(cfg)
    try:
        engine = Engine(reader, cfg.alerts, state, cfg.console.sites)
        if args.once:
            logging.getLogger("livinglab.alerts").setLevel(
                logging.DEBUG if args.verbose else logging.ERROR)
            return _once(engine)
        from .service import run_service

        asyncio.run(run_service(engine, cfg.alerts_state_file))
        return 0
    finally:
        reader.close()


def _once(engine: Engine) -> int:
    result = engine.cycle(int(time.time() * 1000))
    for line in sorted(a.line() for a in result.firing):
        print(line)
    sys.stdout.flush()
    if result.sent is False:
        print(f"livinglab: Alertmanager at {engine.cfg.alertmanager_url} did not take the "
              "alerts (printed above; the service would keep them and retry)", file=sys.stderr)
    return 0


def _install_service(args: argparse.Namespace) -> int:
    from .install import alerts_unit_text, install_alerts

    path = args.service_config or args.config
    cfg = _config(path)
    if args.print_only:
        sys.stdout.write(alerts_unit_text(cfg, Path(path), args.user))
        return 0
    unit = install_alerts(cfg, Path(path), args.user, Path(args.unit_dir))
    print(f"wrote {unit}; start it with: systemctl enable --now {unit.name}")
    return 0
