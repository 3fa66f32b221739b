"""``livinglab alerts install-service``: the alerts evaluator as a systemd service.

The gateway's hardened unit (:func:`gateway.ops.service.unit_text`: ``Type=notify``,
``WatchdogSec``, ``Restart=always``, its own user, read-only system) with three
lines changed: what it runs, what it is called, and what it may write (the state
file's directory, not a broker's). It needs no Mosquitto, only the network.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from pathlib import Path

from protocols.config import Config

from ..ops.service import DEFAULT_USER, ServiceError, gateway_command, unit_text

__all__ = ["UNIT_NAME", "alerts_command", "alerts_unit_text", "install_alerts"]

UNIT_NAME = "livinglab-alerts.service"


def alerts_command(config: Path) -> list[str]:
    """ExecStart: this venv's ``livinglab alerts --config FILE`` (absolute paths)."""
    cmd = gateway_command(config)
    i = cmd.index("gateway")
    return [*cmd[:i], "alerts", *cmd[i + 1:]]


def alerts_unit_text(cfg: Config, config: Path, user: str = DEFAULT_USER,
                     command: list[str] | None = None) -> str:
    """The unit file. Pure, like the gateway's."""
    cmd = command or alerts_command(config)
    state_dir = cfg.alerts_state_file.resolve().parent
    out = []
    for line in unit_text(cfg, config, user, cmd).splitlines():
        if line.startswith("# Written by"):
            line = "# Written by `livinglab alerts install-service`; docs/alerts.md explains it."
        elif line.startswith("Description="):
            line = f"Description=livinglab alerts ({cfg.alerts.alertmanager_url or 'no URL'})"
        elif line.startswith(("After=", "Wants=")):
            line = line.split("=")[0] + "=network-online.target"
        elif line.startswith("ReadWritePaths="):
            line = f"ReadWritePaths={state_dir}"
        elif line.startswith("# Waiting for the broker"):
            line = "# The first cycle reads the store; a slow store extends the start."
        elif line.startswith("# SIGTERM:"):
            line = "# SIGTERM: the cycle in progress ends, the state file is written, exit 0."
        elif line.startswith("# The gateway pings"):
            line = "# Pings every WatchdogSec/4 from the event loop; silence = restart."
        elif line == "SupplementaryGroups=dialout":
            line = "PrivateDevices=yes"
        out.append(line)
    return "\n".join(out) + "\n"


def install_alerts(cfg: Config, config: Path, user: str = DEFAULT_USER,
                   unit_dir: Path = Path("/etc/systemd/system")) -> Path:
    """Create the user if missing, give it the state file's directory, write the unit,
    reload systemd. Returns the unit's path."""
    if os.geteuid() != 0:
        raise ServiceError("installing a service needs root (run it with sudo, or pass --print "
                           "to see the unit)")
    try:
        pw = pwd.getpwnam(user)
    except KeyError:
        useradd = shutil.which("useradd") or "/usr/sbin/useradd"
        state_dir = cfg.alerts_state_file.resolve().parent
        res = subprocess.run([useradd, "--system", "--user-group", "--no-create-home",
                              "--home-dir", str(state_dir), "--shell", "/usr/sbin/nologin", user],
                             capture_output=True, text=True, check=False)
        if res.returncode != 0:
            raise ServiceError(f"cannot create user {user}: {res.stderr.strip()} "
                               "(create it yourself, or pass --user U)") from None
        pw = pwd.getpwnam(user)
    state_dir = cfg.alerts_state_file.resolve().parent
    state_dir.mkdir(parents=True, exist_ok=True)
    os.chown(state_dir, pw.pw_uid, pw.pw_gid)
    if cfg.alerts_state_file.exists():
        os.chown(cfg.alerts_state_file, pw.pw_uid, pw.pw_gid)
    unit_dir.mkdir(parents=True, exist_ok=True)
    unit = unit_dir / UNIT_NAME
    tmp = unit.with_suffix(".tmp")
    tmp.write_text(alerts_unit_text(cfg, config, user), encoding="utf-8")
    tmp.replace(unit)
    if Path("/run/systemd/system").is_dir() and shutil.which("systemctl"):
        subprocess.run(["systemctl", "daemon-reload"], check=False)
    return unit
