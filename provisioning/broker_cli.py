"""``livinglab broker sync`` (password, ACL, config snippet) and ``broker certs`` (TLS)."""

from __future__ import annotations

import argparse

from devices.errors import DevicesError

from . import tls
from .common import add_config_arg, load_settings, open_inventory
from .errors import ProvisioningError
from .sync import SyncResult, sync

ERRORS: tuple[type[Exception], ...] = (ProvisioningError, DevicesError)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    broker = subparsers.add_parser("broker", help="Mosquitto password/ACL files and TLS certs")
    sub = broker.add_subparsers(dest="broker_command", metavar="ACTION", required=True)
    p = sub.add_parser("sync", help="regenerate the password and ACL files from the inventory",
                       description="Rewrite Mosquitto's password file and ACL file from the "
                                   "device inventory, then SIGHUP the broker if its pid is "
                                   "known (--reload-pid or [provisioning] mosquitto_pid_file).")
    add_config_arg(p)
    p.add_argument("--reload-pid", type=int, default=None, metavar="PID",
                   help="send SIGHUP to this mosquitto process after writing the files")
    p.set_defaults(func=_sync)
    c = sub.add_parser("certs", help="a private CA and the broker's TLS certificate",
                       description="Create the site's CA (kept when it exists: boards trust "
                                   "it) and a fresh server certificate for the broker, "
                                   "SAN = --hosts, under <data_dir>/broker/tls/ (keys 0600, "
                                   "owned by the mosquitto user when it exists); print the "
                                   "Mosquitto listener lines. Both start in 1999 so a board "
                                   "whose clock is not set yet can connect (docs/tls.md).")
    add_config_arg(c)
    c.add_argument("--hosts", required=True, metavar="NAME[,NAME...]",
                   help="the broker's names and IPs as devices and the gateway reach it, "
                        "e.g. broker.lab,10.0.0.2")
    c.add_argument("--days", type=int, default=tls.SERVER_DAYS, metavar="N",
                   help=f"server certificate lifetime (default {tls.SERVER_DAYS})")
    c.add_argument("--port", type=int, default=tls.MQTT_TLS_PORT, metavar="PORT",
                   help=f"port of the TLS listener printed (default {tls.MQTT_TLS_PORT})")
    c.set_defaults(func=_certs)


def describe(res: SyncResult) -> str:
    lines = [f"password file: {res.password_file} ({res.users} users, hashed with "
             f"{res.hasher})", f"acl file: {res.acl_file}"]
    if res.console_user:
        lines.append(f"console login: {res.console_user} (reads the status topics only)")
    if res.snippet is not None:
        lines.append(f"mosquitto snippet: {res.snippet}"
                     f"{' (with the TLS listener)' if res.tls else ''}")
    if res.reloaded_pid is not None:
        lines.append(f"mosquitto pid {res.reloaded_pid} reloaded (SIGHUP)")
    else:
        lines.append("broker not signalled (pass --reload-pid PID or set [provisioning] "
                     "mosquitto_pid_file; or restart mosquitto)")
    if res.missing_secrets:
        lines.append("left out (no secret on this host; re-flash them): "
                     + ", ".join(res.missing_secrets))
    return "\n".join(lines)


def _certs(args: argparse.Namespace) -> int:
    settings = load_settings(args)
    res = tls.issue(settings.data_dir, settings.site, tls.parse_hosts(args.hosts), args.days)
    f = res.files
    print(f"CA: {f.ca_cert} ({'created' if res.ca_created else 'kept'}; devices get "
          f"{f.ca_der.name} at device flash)")
    print(f"server certificate: {f.server_cert} for {', '.join(res.hosts)}, valid until "
          f"{res.not_after:%Y-%m-%d}")
    print(f"keys: {f.server_key} (0600{', owner ' + res.owner if res.owner else ''}), "
          f"{f.ca_key} (0600, keep it off the broker's user)")
    print("Mosquitto listener (livinglab broker sync writes it into its snippet):")
    for line in tls.listener_lines(f, args.port):
        print(f"  {line}")
    print("then set [mqtt] tls = true (ca_file defaults to the CA above) and restart mosquitto")
    return 0


def _sync(args: argparse.Namespace) -> int:
    settings = load_settings(args)
    with open_inventory(settings) as inv:
        print(describe(sync(settings, inv, args.reload_pid)))
    return 0
