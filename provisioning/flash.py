"""``device flash``: put firmware, config and credentials on one board, record it.

The steps, in order, each safe to repeat (re-flashing the same device is the
normal way to update it): check the board, reuse or create its MQTT secret,
copy only the firmware files whose hash differs, write ``device.json`` last
(temp file + rename, so a board never boots half-configured), record it in the
inventory, regenerate the broker's password/ACL files, then reset the board and
(optionally) wait for its first live ``online`` status.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devices import catalogue
from devices.catalogue import BoardProfile
from devices.inventory import Device, Inventory, SensorSpec
from protocols.ids import is_id

from . import credentials, otakey, tls
from .boardfs import BoardFS, BoardInfo, same_content
from .errors import BrokerError, DeviceIdError, NotMicroPythonError, PortError, WrongBoardError
from .rawrepl import RawRepl
from .settings import Settings
from .status import StatusMessage, StatusWatcher, status_topic
from .sync import SyncResult, sync

CONFIG_FILE = "device.json"
CA_FILE = "ca.der"  # the site CA in DER, when [mqtt] tls is on (docs/tls.md)
# The loader's slot state (docs/ota.md): a USB flash installs slot a, so it says so.
OTA_STATE_FILE, OTA_STATE_FRESH = "ota.json", b'{"slot": "a"}'


@dataclass(frozen=True)
class FlashRequest:
    port: str
    board: BoardProfile
    device: str
    files: Sequence[tuple[Path, str]]
    fw_version: str
    sensors: tuple[SensorSpec, ...] | None = None   # None: keep what the inventory has
    location: str | None = None
    wait: bool = True
    reload_pid: int | None = None


@dataclass
class FlashResult:
    device: str
    port: str
    board: str
    info: BoardInfo | None = None
    copied: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    config_written: bool = False
    fw_hash: str = ""
    sync: SyncResult | None = None
    online: StatusMessage | None = None
    reset: bool = False
    cwd: str = ""  # the board's flash root, shown when it must be started by hand
    elapsed_s: float = 0.0


def check_device_id(device: str) -> str:
    if not is_id(device):
        raise DeviceIdError(f"device id '{device}' is not valid: use 1-63 lowercase letters, "
                            "digits and '-', starting with a letter or digit (e.g. air-0001)")
    return device


def check_board(port: str, board: BoardProfile, info: BoardInfo) -> None:
    """MicroPython on the other end, and the platform the board profile expects."""
    if info.implementation != "micropython":
        raise NotMicroPythonError(port, f"sys.implementation is '{info.implementation}'")
    if info.platform not in board.platforms:
        raise WrongBoardError(port, board.name, info.platform,
                              catalogue.board_for_platform(info.platform))


def firmware_hash(files: Sequence[tuple[Path, str]]) -> str:
    """One sha256 over (destination, content hash) of every file: the installed build."""
    h = hashlib.sha256()
    for src, dest in sorted(files, key=lambda f: f[1]):
        h.update(f"{dest}\0{hashlib.sha256(src.read_bytes()).hexdigest()}\n".encode())
    return h.hexdigest()


def device_config(settings: Settings, board: BoardProfile, device: str,
                  sensors: Sequence[SensorSpec], cred: credentials.Credential) -> dict[str, Any]:
    """The board's ``device.json`` (docs/device-config.md)."""
    defaults = settings.prov.devices.get(device)
    interval = (defaults.interval_s if defaults and defaults.interval_s else
                settings.prov.interval_s)
    return {
        "device": device,
        "site": settings.site,
        "board": board.name,
        "prefix": settings.prefix,
        "wifi": {"ssid": settings.wifi.ssid, "password": settings.wifi.password},
        "mqtt": {"host": settings.device_mqtt_host, "port": settings.device_mqtt_port,
                 "username": cred.username, "password": cred.password,
                 "keepalive": settings.prov.keepalive,
                 **({"tls": True, "ca": CA_FILE} if settings.mqtt_ca_file else {})},
        "interval_s": interval,
        "sensors": [s.device_entry() for s in sensors],
        "calibration": dict(defaults.calibration) if defaults else {},
    }


def _copy(fs: BoardFS, files: Sequence[tuple[Path, str]], result: FlashResult) -> None:
    contents = {dest: src.read_bytes() for src, dest in files}
    on_board = fs.hashes(list(contents))
    for dest, data in contents.items():
        if same_content(on_board[dest], data):
            result.unchanged.append(dest)
        else:
            fs.write(dest, data)
            result.copied.append(dest)


def reset_board(repl: RawRepl, board: BoardProfile) -> bool:
    """Start the new firmware with machine.reset(); False when the board cannot be
    reset from its REPL (the unix port: whoever runs it starts ``micropython main.py``)."""
    if board.reset != "machine":
        return False
    try:
        repl.send("import machine\nmachine.reset()")
    except PortError:
        pass  # a board that resets at once may drop its USB port before answering
    return True


def flash(settings: Settings, inventory: Inventory, req: FlashRequest,
          on_waiting: Callable[[FlashResult], None] | None = None) -> FlashResult:
    """Provision one board end to end (see the module docstring for the order)."""
    started = time.monotonic()
    check_device_id(req.device)
    result = FlashResult(req.device, req.port, req.board.name)
    previous = inventory.find(req.device)
    sensors = req.sensors
    if sensors is None:
        sensors = previous.sensors if previous else ()
    location = req.location if req.location is not None else (
        previous.location if previous else "")
    cred = credentials.ensure(settings.secrets_dir, req.device)
    dev_cfg = device_config(settings, req.board, req.device, sensors, cred)
    dev_cfg["ota"] = {"key": otakey.ensure(settings.secrets_dir, req.device)}  # never sent OTA
    cfg_bytes = json.dumps(dev_cfg, indent=1, sort_keys=True).encode() + b"\n"
    watcher: StatusWatcher | None = None
    unreachable = ""
    with RawRepl(req.port, settings.prov.baudrate) as repl:
        repl.enter()
        fs = BoardFS(repl)
        result.info = fs.info()
        check_board(req.port, req.board, result.info)
        _copy(fs, req.files, result)
        if settings.mqtt_ca_file is not None:
            der = tls.ca_der(settings.mqtt_ca_file)
            if not same_content(fs.hashes([CA_FILE])[CA_FILE], der):
                fs.write(CA_FILE, der)
                result.copied.append(CA_FILE)
        fs.write(OTA_STATE_FILE, OTA_STATE_FRESH)  # after the files: a cut keeps the old slot
        if not same_content(fs.hashes([CONFIG_FILE])[CONFIG_FILE], cfg_bytes):
            fs.write(CONFIG_FILE, cfg_bytes)
            result.config_written = True
        result.fw_hash = firmware_hash(req.files)
        inventory.upsert(Device(
            device=req.device, site=settings.site, board=req.board.name, sensors=sensors,
            location=location, fw_version=req.fw_version, fw_hash=result.fw_hash,
            credential_ref=str(credentials.secret_path(settings.prov.secrets_dir, req.device)),
        ))
        result.sync = sync(settings, inventory, req.reload_pid)
        if req.wait:
            # Subscribe before the reset so the first live "online" cannot be missed.
            watcher = StatusWatcher(settings.mqtt_host, settings.mqtt_port,
                                    settings.gateway_username, settings.gateway_password,
                                    ca_file=settings.mqtt_ca_file,
                                    cert_file=settings.mqtt_cert_file,
                                    key_file=settings.mqtt_key_file)
            try:
                watcher.start([status_topic(settings.prefix, settings.site, req.device)])
            except BrokerError as exc:
                watcher = None
                unreachable = exc.reason
            result.reset = reset_board(repl, req.board)
            result.cwd = "" if result.reset else fs.cwd()
        if not result.reset:
            repl.exit()  # leave the board at its friendly REPL, as we found it
    if not req.wait:
        result.elapsed_s = time.monotonic() - started
        return result
    if watcher is None:
        raise BrokerError(
            f"broker {settings.mqtt_host}:{settings.mqtt_port} unreachable while waiting for "
            f"{req.device} to come online: {unreachable} (the board is flashed; check [mqtt] "
            "host/port/username/password, or use --no-wait)", unreachable)
    if on_waiting is not None:
        on_waiting(result)
    with watcher:
        result.online = watcher.wait_online(settings.site, req.device,
                                            settings.prov.wait_timeout_s)
    result.elapsed_s = time.monotonic() - started
    return result
