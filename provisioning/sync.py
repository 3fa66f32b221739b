"""``broker sync``: regenerate Mosquitto's password and ACL files from the inventory."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from devices.inventory import Inventory

from . import credentials, mosquitto, tls
from .errors import ProvisioningError
from .settings import Settings


@dataclass(frozen=True)
class SyncResult:
    password_file: Path
    acl_file: Path
    users: int
    hasher: str
    reloaded_pid: int | None
    missing_secrets: tuple[str, ...]
    console_user: str = ""
    snippet: Path | None = None
    tls: bool = False


def sync(settings: Settings, inventory: Inventory, reload_pid: int | None = None) -> SyncResult:
    """Rewrite both files from the active devices, then SIGHUP the broker if known.

    A device whose secret file is gone is left out (it could not log in anyway)
    and reported, so the caller can say "re-flash it". With ``[console]
    mqtt_username`` set, the console gets its own login that reads the status
    topics and writes nothing.
    """
    users: list[credentials.Credential] = []
    if settings.gateway_username:
        users.append(credentials.Credential(settings.gateway_username,
                                            settings.gateway_password))
    acls: list[mosquitto.DeviceAcl] = []
    missing: list[str] = []
    for dev in inventory.list(include_retired=False):
        cred = credentials.load(settings.secrets_dir, dev.device)
        if cred is None:
            missing.append(dev.device)
            continue
        users.append(cred)
        acls.append(mosquitto.DeviceAcl(dev.site, dev.device))
    operator = _operator_user(settings, {u.username for u in users})
    if operator is not None:
        users.append(operator)
    console = _console_user(settings, {u.username for u in users})
    if console is not None:
        users.append(console)
    hasher = mosquitto.write_password_file(settings.password_file, users, settings.prov.hasher)
    mosquitto.write_acl_file(settings.acl_file, mosquitto.acl_text(
        settings.prefix, acls, settings.gateway_username, settings.site, settings.gateway_id,
        console.username if console is not None else "",
        operator.username if operator is not None else ""))
    files = tls.tls_files(settings.data_dir)
    with_tls = files.server_cert.exists() and files.server_key.exists()
    mosquitto.write_snippet(settings.mosquitto_snippet, mosquitto.snippet_text(
        settings.password_file, settings.acl_file,
        tls.listener_lines(files, settings.prov.tls_port) if with_tls else []))
    pid = reload_pid
    if pid is None and settings.prov.mosquitto_pid_file is not None:
        pid_file = settings.path(settings.prov.mosquitto_pid_file)
        if pid_file.exists():
            pid = mosquitto.read_pid_file(pid_file)
    if pid is not None:
        mosquitto.reload_broker(pid)
    return SyncResult(settings.password_file, settings.acl_file, len(users), hasher, pid,
                      tuple(missing), console.username if console is not None else "",
                      settings.mosquitto_snippet, with_tls)


def _operator_user(settings: Settings, taken: set[str]) -> credentials.Credential | None:
    """The operators' login (``[mqtt] operator_username``): config and update topics.
    None: the gateway's login is also the operators' (one account for a small lab)."""
    name, password = settings.operator_username, settings.operator_password
    if not name or name == settings.gateway_username:
        return None
    if not password:
        raise ProvisioningError(f"[mqtt] operator_username '{name}' has no "
                                "operator_password (set both, or neither)")
    if name in taken:
        raise ProvisioningError(f"[mqtt] operator_username '{name}' is already a device's "
                                "login (choose another name, e.g. 'operator')")
    return credentials.Credential(name, password)


def _console_user(settings: Settings, taken: set[str]) -> credentials.Credential | None:
    """The console's read-only login, or None when it has none of its own (it then uses
    the ``[mqtt]`` login, which already reads the whole site)."""
    name, password = settings.console_username, settings.console_password
    if not name or (name, password) == (settings.gateway_username,
                                         settings.gateway_password):
        return None
    if not password:
        raise ProvisioningError(f"[console] mqtt_username '{name}' has no mqtt_password "
                                "(set both, or neither to use the [mqtt] login)")
    if name in taken:
        raise ProvisioningError(f"[console] mqtt_username '{name}' is already the gateway's or "
                                "a device's login (choose another name, e.g. 'console')")
    return credentials.Credential(name, password)
