"""``livinglab device ...``: flash, list-ports, install-micropython, retire.

    livinglab device flash --port PORT --board BOARD --device ID [--config FILE] [--no-wait]
    livinglab device list-ports [--all]
    livinglab device install-micropython --board esp32 --port PORT --image FILE
    livinglab device install-micropython --board pico_w --image FILE.uf2 [--drive PATH]
    livinglab device retire --device ID [--config FILE]
    livinglab device monitor --port PORT [--config FILE]
    livinglab device set --config FILE --device ID [--location LAT,LON] [--room T] ...
"""

from __future__ import annotations

import argparse
from pathlib import Path

from devices import catalogue
from devices.errors import DevicesError
from devices.meta_cli import add_set_parser

from . import credentials, install, monitor
from .broker_cli import describe
from .common import add_config_arg, load_settings, open_inventory
from .errors import FirmwareMissingError, ProvisioningError
from .flash import FlashRequest, FlashResult, check_device_id, flash
from .ports import candidate_ports, format_ports
from .sensorspec import parse_sensor
from .sync import sync

ERRORS: tuple[type[Exception], ...] = (ProvisioningError, DevicesError)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    device = subparsers.add_parser("device", help="provision one board (flash, retire, ...)")
    sub = device.add_subparsers(dest="device_command", metavar="ACTION", required=True)

    f = sub.add_parser("flash", help="provision a board over its serial port (raw REPL)",
                       description="Copy the firmware (only changed files), write device.json "
                                   "with the device's own MQTT credentials, record it in the "
                                   "inventory, update the broker's password/ACL files, reset "
                                   "the board and wait for its first online status.")
    f.add_argument("--port", required=True, help="serial port, e.g. /dev/ttyACM0")
    f.add_argument("--board", required=True, help="pico_w, esp32 or unix")
    f.add_argument("--device", required=True, help="device id, e.g. air-0001")
    add_config_arg(f)
    f.add_argument("--no-wait", action="store_true",
                   help="do not reset the board nor wait for it to come online")
    f.add_argument("--sensor", action="append", default=None, metavar="KIND[@BUS]",
                   help="attached sensor (repeat): scd41, scd41@i2c1:0x62, pms5003@uart1, "
                        "yfs201@pin15; default: [provisioning.devices.ID] or the inventory")
    f.add_argument("--location", default=None, help="free text: room, zone")
    f.add_argument("--reload-pid", type=int, default=None, metavar="PID",
                   help="SIGHUP this mosquitto after updating its files")
    f.set_defaults(func=_flash)

    lp = sub.add_parser("list-ports", help="serial ports that may be boards, with USB ids")
    lp.add_argument("--all", action="store_true", help="also ports without a USB id")
    lp.set_defaults(func=_list_ports)

    im = sub.add_parser("install-micropython", help="install MicroPython on a blank board",
                        description="esp32: esptool erase_flash + write_flash over --port. "
                                    "pico_w: copy the .uf2 onto the RPI-RP2 drive (hold "
                                    "BOOTSEL while plugging the board in).")
    im.add_argument("--board", required=True, choices=["esp32", "pico_w"])
    im.add_argument("--image", required=True, type=Path, help=".bin (esp32) or .uf2 (pico_w)")
    im.add_argument("--port", default=None, help="serial port (esp32)")
    im.add_argument("--drive", type=Path, default=None, help="RPI-RP2 mount point (pico_w)")
    im.add_argument("--offset", type=lambda s: int(s, 0), default=None,
                    help="esp32 write offset (default from the board profile: 0x1000; "
                         "ESP32-S2/S3 need 0x0)")
    im.add_argument("--baud", type=int, default=460800, help="esptool baud rate")
    im.set_defaults(func=_install)

    r = sub.add_parser("retire", help="mark a device retired and remove its broker login")
    r.add_argument("--device", required=True)
    add_config_arg(r)
    r.add_argument("--reload-pid", type=int, default=None, metavar="PID",
                   help="SIGHUP this mosquitto after updating its files")
    r.set_defaults(func=_retire)

    monitor.register(sub)
    add_set_parser(sub)


def _firmware(board: str) -> tuple[list[tuple[Path, str]], str]:
    try:
        import firmware
    except ImportError:
        raise FirmwareMissingError("the firmware package is not installed "
                                   "(pip install -e . from the repository)") from None
    try:
        return firmware.board_files(board), str(firmware.FW_VERSION)
    except firmware.FirmwareError as exc:
        raise FirmwareMissingError(str(exc)) from None


def summary(res: FlashResult, fw_version: str) -> str:
    info = res.info
    head = f"{res.device} on {res.port}: board {res.board}"
    if info is not None:
        head += f" (MicroPython {info.version}, {info.platform})"
    total = len(res.copied) + len(res.unchanged)
    lines = [head,
             f"  firmware {fw_version} ({res.fw_hash[:12]}): copied {len(res.copied)} of "
             f"{total} files, {len(res.unchanged)} unchanged",
             f"  config: {'written' if res.config_written else 'unchanged'} (device.json)"]
    if res.sync is not None:
        reload = (f", broker pid {res.sync.reloaded_pid} reloaded"
                  if res.sync.reloaded_pid is not None else ", broker not signalled")
        lines.append(f"  inventory: recorded; broker files: {res.sync.users} users{reload}")
    if res.online is not None:
        extra = ", ".join(f"{k} {v}" for k, v in res.online.payload.items() if k != "state")
        lines.append(f"  online{' (' + extra + ')' if extra else ''}")
    else:
        lines.append("  not reset, not waited for (--no-wait)")
    lines.append(f"  done in {res.elapsed_s:.1f}s")
    return "\n".join(lines)


def _flash(args: argparse.Namespace) -> int:
    check_device_id(args.device)
    board = catalogue.board(args.board)
    settings = load_settings(args)
    files, fw_version = _firmware(board.firmware_board)
    sensor_args: list[str] | None = args.sensor
    if sensor_args is None and args.device in settings.prov.devices:
        sensor_args = list(settings.prov.devices[args.device].sensors) or None
    sensors = None if sensor_args is None else tuple(parse_sensor(s, board) for s in sensor_args)
    location = args.location
    if location is None and args.device in settings.prov.devices:
        location = settings.prov.devices[args.device].location or None
    req = FlashRequest(port=args.port, board=board, device=args.device, files=files,
                       fw_version=fw_version, sensors=sensors, location=location,
                       wait=not args.no_wait, reload_pid=args.reload_pid)
    with open_inventory(settings) as inv:
        res = flash(settings, inv, req, on_waiting=_waiting)
    print(summary(res, fw_version))
    return 0


def _waiting(res: FlashResult) -> None:
    if not res.reset:
        print(f"{res.device}: a {res.board} board cannot be reset from its REPL; start it "
              f"with: cd {res.cwd} && micropython main.py", flush=True)
    print(f"{res.device}: waiting for its first online status ...", flush=True)


def _list_ports(args: argparse.Namespace) -> int:
    print(format_ports(candidate_ports(args.all)))
    return 0


def _install(args: argparse.Namespace) -> int:
    board = catalogue.board(args.board)
    if board.image_kind == "uf2":
        dest = install.install_uf2(args.image, args.drive)
        print(f"copied {args.image} to {dest}; the board reboots into MicroPython "
              "(then: livinglab device list-ports)")
        return 0
    if not args.port:
        raise ProvisioningError("--port is required for esp32 (see livinglab device list-ports)")
    offset = board.flash_offset if args.offset is None else args.offset
    install.install_esp32(args.port, args.image, offset, args.baud)
    print(f"MicroPython written to {args.port} at {hex(offset)}; press reset on the board")
    return 0


def _retire(args: argparse.Namespace) -> int:
    check_device_id(args.device)
    settings = load_settings(args)
    with open_inventory(settings) as inv:
        dev = inv.retire(args.device)
        had_secret = credentials.remove(settings.secrets_dir, dev.device)
        res = sync(settings, inv, args.reload_pid)
    print(f"{dev.device} retired; MQTT credentials "
          f"{'removed' if had_secret else 'were already gone'}")
    print(describe(res))
    return 0
