"""``livinglab gateway install-service``: the gateway as a hardened systemd service.

The unit (see docs/pi.md for every line): ``Type=notify`` (the gateway sends
``READY=1`` once subscribed, :mod:`gateway.sdnotify`), ``WatchdogSec`` (a hung
event loop stops the pings and systemd restarts the process),
``Restart=always``, its own unprivileged user, the whole file system read-only
except ``data_dir`` (``ProtectSystem=strict`` + ``ReadWritePaths``), started
after the network and Mosquitto. Provisioning's part of ``data_dir`` (``broker/``:
accounts, device secrets, OTA keys, the CA) stays out of the service user's hands:
not chowned to it, read-only in the unit, the secrets inaccessible.

:func:`unit_text` is pure (tested with ``systemd-analyze verify``);
:func:`install` does the root-only parts: the user, ``data_dir`` ownership, the
unit file, ``systemctl daemon-reload``.
"""

from __future__ import annotations

import argparse
import os
import pwd
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from gateway.errors import GatewayError
from protocols.config import Config

__all__ = ["DEFAULT_USER", "UNIT_NAME", "WATCHDOG_S", "ServiceError", "gateway_command",
           "install", "private_paths", "problems", "reclaim_secrets", "service_owned",
           "unit_text", "writable_paths"]

UNIT_NAME = "livinglab-gateway.service"
DEFAULT_USER = "livinglab"
WATCHDOG_S = 30  # systemd restarts a gateway whose event loop is silent this long
RESTART_S = 5


class ServiceError(GatewayError):
    """Installing the service failed; the message names the fix."""


def add_install_args(s: argparse.ArgumentParser) -> None:
    """The options every ``... install-service`` takes (the gateway's, the alerts')."""
    s.add_argument("--config", dest="service_config", default=None, metavar="FILE",
                   help="TOML config file (its absolute path goes into the unit)")
    s.add_argument("--user", default="livinglab", metavar="U",
                   help="the user the service runs as, created if missing (default livinglab)")
    s.add_argument("--print", dest="print_only", action="store_true",
                   help="print the unit to stdout and change nothing")
    s.add_argument("--unit-dir", default="/etc/systemd/system", metavar="DIR",
                   help="where the unit file goes (default /etc/systemd/system)")


def gateway_command(config: Path) -> list[str]:
    """ExecStart: the ``livinglab`` of this interpreter's venv, absolute paths only.

    ``sys.executable`` is not resolved: a venv's ``bin/python`` is a symlink to the
    system interpreter, and following it would leave the venv (and the package).
    """
    bindir = Path(os.path.abspath(sys.executable)).parent
    exe = bindir / "livinglab"
    if exe.is_file() and os.access(exe, os.X_OK):
        return [str(exe), "gateway", "--config", str(config.resolve())]
    return [str(bindir / Path(sys.executable).name), "-m", "gateway.cli", "gateway",
            "--config", str(config.resolve())]


def writable_paths(cfg: Config) -> list[Path]:
    """``data_dir``, and the SQLite store's directory when it lies elsewhere."""
    data_dir = cfg.gateway.data_dir.resolve()
    paths = [data_dir]
    if cfg.store.kind == "sqlite":
        store_dir = cfg.store.path.resolve().parent
        if not store_dir.is_relative_to(data_dir):
            paths.append(store_dir)
    return paths


# Provisioning's part of data_dir (`broker sync`, `broker certs`, `device flash`): the
# broker's password and ACL files, every device's MQTT secret and OTA key, the site CA
# and its key. Never the service user's: a compromised gateway must not read a board's
# secret, sign a certificate or rewrite the broker's accounts.
PROVISIONING_DIR = Path("broker")
# The secrets in it (relative to data_dir): not even readable inside the unit.
SECRET_PATHS = (Path("broker/secrets"), Path("broker/tls/ca.key"), Path("broker/tls/server.key"))


def private_paths(cfg: Config) -> list[Path]:
    """The secrets under data_dir, [provisioning] secrets_dir included when it is moved."""
    data_dir = cfg.gateway.data_dir.resolve()
    paths = [data_dir / p for p in SECRET_PATHS]
    p = cfg.provisioning.secrets_dir
    paths.append(p if p.is_absolute() else data_dir / p)
    return list(dict.fromkeys(paths))


def service_owned(cfg: Config) -> list[Path]:
    """What :func:`install` gives the service user: the writable paths and everything
    under them except provisioning's directory and the secrets."""
    keep_out = [cfg.gateway.data_dir.resolve() / PROVISIONING_DIR, *private_paths(cfg)]
    out: list[Path] = []
    for d in writable_paths(cfg):
        out.append(d)
        for child in sorted(d.rglob("*")):
            if child.is_symlink() or any(child.is_relative_to(k) for k in keep_out):
                continue
            out.append(child)
    return out


def _quote(arg: str) -> str:
    """One ExecStart argument; systemd splits on spaces and expands % and $."""
    arg = arg.replace("%", "%%").replace("$", "$$")
    if any(c in arg for c in " \t\"'\\;"):
        return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return arg


def unit_text(cfg: Config, config: Path, user: str = DEFAULT_USER,
              command: list[str] | None = None) -> str:
    """The unit file for one gateway. Pure: nothing is read but ``cfg`` and the paths."""
    cmd = command or gateway_command(config)
    rw = " ".join(_quote(str(p)) for p in writable_paths(cfg))
    home = any(Path(p).is_relative_to(h) for p in (cmd[0], str(config.resolve()))
               for h in ("/home", "/root"))
    serial = bool(cfg.gateway.serial_ports)
    lines = [
        "# Written by `livinglab gateway install-service`; docs/pi.md explains every line.",
        "[Unit]",
        f"Description=livinglab gateway {cfg.gateway.id} (site {cfg.site})",
        "After=network-online.target mosquitto.service",
        "Wants=network-online.target mosquitto.service",
        "# Restart=always forever: never give up after a burst of failures.",
        "StartLimitIntervalSec=0",
        "",
        "[Service]",
        "Type=notify",
        "NotifyAccess=main",
        f"ExecStart={' '.join(_quote(a) for a in cmd)}",
        f"User={user}",
        "Environment=PYTHONUNBUFFERED=1",
        "# The gateway pings every WatchdogSec/4 from its event loop; silence = restart.",
        f"WatchdogSec={WATCHDOG_S}",
        "Restart=always",
        f"RestartSec={RESTART_S}",
        "# Waiting for the broker at boot extends the start timeout while the loop is alive.",
        "TimeoutStartSec=90",
        "# SIGTERM: the gateway exits within 10 s; unflushed readings stay in data_dir.",
        "TimeoutStopSec=20",
        "# --- hardening: read-only system, writable data_dir only ---",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        f"ReadWritePaths={rw}",
        "# provisioning's files are read-only here, the secrets not even visible",
        f"ReadOnlyPaths=-{_quote(str(cfg.gateway.data_dir.resolve() / PROVISIONING_DIR))}",
        "InaccessiblePaths=" + " ".join("-" + _quote(str(p)) for p in private_paths(cfg)),
        f"ProtectHome={'read-only' if home else 'yes'}",
        "PrivateTmp=yes",
        *(["SupplementaryGroups=dialout"] if serial else ["PrivateDevices=yes"]),
        "ProtectKernelTunables=yes",
        "ProtectKernelModules=yes",
        "ProtectKernelLogs=yes",
        "ProtectControlGroups=yes",
        "ProtectClock=yes",
        "ProtectHostname=yes",
        "ProtectProc=invisible",
        "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
        "RestrictNamespaces=yes",
        "RestrictRealtime=yes",
        "RestrictSUIDSGID=yes",
        "LockPersonality=yes",
        "SystemCallArchitectures=native",
        "SystemCallFilter=@system-service",
        "CapabilityBoundingSet=",
        "UMask=0027",
        "",
        "[Install]",
        "WantedBy=multi-user.target",
    ]
    return "\n".join(lines) + "\n"


def reclaim_secrets(cfg: Config, service_uid: int) -> list[Path]:
    """Secrets an earlier install gave the service user go back to root, 0600 (0700 for
    directories); returns what changed. Files another admin owns are left alone."""
    changed = []
    for top in private_paths(cfg):
        if not top.exists():
            continue
        for p in [top, *top.rglob("*")] if top.is_dir() else [top]:
            st = p.lstat()
            if p.is_symlink() or st.st_uid != service_uid:
                continue
            os.chown(p, 0, 0)
            os.chmod(p, 0o700 if p.is_dir() else 0o600)
            changed.append(p)
    return changed


@dataclass(frozen=True)
class Installed:
    unit: Path
    created_user: bool
    reloaded: bool


def _unreachable(path: Path) -> Path | None:
    """The first directory above ``path`` that other users cannot enter (e.g. a 0700 home)."""
    for d in path.resolve().parents:
        if d.exists() and not os.stat(d).st_mode & 0o001:
            return d
    return None


def problems(cfg: Config, config: Path, user: str) -> list[str]:
    """What would stop the service user from starting the gateway, one line each."""
    out = []
    if user == "root":
        out.append("the service runs as root (pass --user livinglab for its own user)")
    for what, p in (("config", config), ("livinglab", Path(gateway_command(config)[0]))):
        d = _unreachable(p)
        if d is not None and user != "root":
            out.append(f"{what} {p} is under {d}, which user {user} cannot enter "
                       f"(install under /opt, see docs/pi.md, or chmod o+x {d})")
    return out


def install(cfg: Config, config: Path, user: str = DEFAULT_USER,
            unit_dir: Path = Path("/etc/systemd/system")) -> Installed:
    """Create the user if missing, own ``data_dir`` by it, write the unit, reload systemd."""
    if os.geteuid() != 0:
        raise ServiceError("installing a service needs root (run it with sudo, or pass --print "
                           "to see the unit)")
    created = False
    try:
        pw = pwd.getpwnam(user)
    except KeyError:
        useradd = shutil.which("useradd") or "/usr/sbin/useradd"
        cmd = [useradd, "--system", "--user-group", "--no-create-home",
               "--home-dir", str(cfg.gateway.data_dir.resolve()),
               "--shell", "/usr/sbin/nologin"]
        if cfg.gateway.serial_ports:
            cmd += ["--groups", "dialout"]
        res = subprocess.run([*cmd, user], capture_output=True, text=True, check=False)
        if res.returncode != 0:
            raise ServiceError(f"cannot create user {user}: {res.stderr.strip()} "
                               "(create it yourself, or pass --user U)") from None
        pw = pwd.getpwnam(user)
        created = True
    for d in writable_paths(cfg):
        d.mkdir(parents=True, exist_ok=True)
    for p in service_owned(cfg):  # files left by a gateway started by hand as root
        os.chown(p, pw.pw_uid, pw.pw_gid)
    reclaim_secrets(cfg, pw.pw_uid)
    unit_dir.mkdir(parents=True, exist_ok=True)
    unit = unit_dir / UNIT_NAME
    tmp = unit.with_suffix(".tmp")
    tmp.write_text(unit_text(cfg, config, user), encoding="utf-8")
    tmp.replace(unit)
    reloaded = False
    if Path("/run/systemd/system").is_dir() and shutil.which("systemctl"):
        reloaded = subprocess.run(["systemctl", "daemon-reload"], check=False).returncode == 0
    return Installed(unit, created, reloaded)
