"""``livinglab broker sync``: regenerate Mosquitto's password and ACL files."""

from __future__ import annotations

import argparse

from devices.errors import DevicesError

from .common import add_config_arg, load_settings, open_inventory
from .errors import ProvisioningError
from .sync import SyncResult, sync

ERRORS: tuple[type[Exception], ...] = (ProvisioningError, DevicesError)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    broker = subparsers.add_parser("broker", help="Mosquitto password and ACL files")
    sub = broker.add_subparsers(dest="broker_command", metavar="ACTION", required=True)
    p = sub.add_parser("sync", help="regenerate the password and ACL files from the inventory",
                       description="Rewrite Mosquitto's password file and ACL file from the "
                                   "device inventory, then SIGHUP the broker if its pid is "
                                   "known (--reload-pid or [provisioning] mosquitto_pid_file).")
    add_config_arg(p)
    p.add_argument("--reload-pid", type=int, default=None, metavar="PID",
                   help="send SIGHUP to this mosquitto process after writing the files")
    p.set_defaults(func=_sync)


def describe(res: SyncResult) -> str:
    lines = [f"password file: {res.password_file} ({res.users} users, hashed with "
             f"{res.hasher})", f"acl file: {res.acl_file}"]
    if res.console_user:
        lines.append(f"console login: {res.console_user} (reads the status topics only)")
    if res.reloaded_pid is not None:
        lines.append(f"mosquitto pid {res.reloaded_pid} reloaded (SIGHUP)")
    else:
        lines.append("broker not signalled (pass --reload-pid PID or set [provisioning] "
                     "mosquitto_pid_file; or restart mosquitto)")
    if res.missing_secrets:
        lines.append("left out (no secret on this host; re-flash them): "
                     + ", ".join(res.missing_secrets))
    return "\n".join(lines)


def _sync(args: argparse.Namespace) -> int:
    settings = load_settings(args)
    with open_inventory(settings) as inv:
        print(describe(sync(settings, inv, args.reload_pid)))
    return 0
