"""The device catalogue: board and sensor profiles, as TOML data files.

A board is ``devices/boards/<name>.toml`` and a sensor kind is
``devices/sensors/<kind>.toml``; adding one is adding a file, found by that
naming convention (never by an import path in a config file). Each file is
validated into a frozen pydantic model once, at load time, so a broken profile
fails loudly in the tests instead of on a technician's laptop.
"""

from __future__ import annotations

import re
import tomllib
from functools import cache
from pathlib import Path
from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from protocols.quantities import QUANTITIES as _CONTRACT
from protocols.quantities import QuantityError, site_quantity

from .errors import CatalogueError, UnknownBoardError, UnknownSensorError

BOARDS_DIR = Path(__file__).parent / "boards"
SENSORS_DIR = Path(__file__).parent / "sensors"
SENSOR_KIND_PATTERN = r"^[a-z0-9_]{1,32}$"
QUANTITIES = frozenset(_CONTRACT)
M = TypeVar("M", bound="_Profile")
_USB_ID = re.compile(r"^[0-9A-F]{4}:([0-9A-F]{4}|\*)$")


class _Profile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BoardProfile(_Profile):
    """What the tools need to know about one kind of board."""

    name: str = Field(pattern=r"^[a-z0-9_]{1,32}$")
    description: str
    # ``sys.platform`` as MicroPython reports it on this board (rp2, esp32, linux).
    platforms: tuple[str, ...] = Field(min_length=1)
    # "VID:PID" in upper-case hex; "VID:*" matches any product of that vendor.
    usb_ids: tuple[str, ...] = ()
    # Name passed to ``firmware.board_files`` to pick the files to install.
    firmware_board: str
    # "machine": machine.reset() over the REPL; "external": the board cannot be
    # reset from the REPL (unix port), whoever runs it starts main.py.
    reset: Literal["machine", "external"]
    has_wifi: bool
    # How MicroPython itself is installed: UF2 drag-and-drop, esptool, or not at all.
    image_kind: Literal["uf2", "esp", "none"]
    flash_offset: int = Field(default=0, ge=0)
    pins: dict[str, int | str] = Field(default_factory=dict)

    @field_validator("usb_ids")
    @classmethod
    def _usb_ids_upper_hex(cls, ids: tuple[str, ...]) -> tuple[str, ...]:
        for usb_id in ids:
            if not _USB_ID.match(usb_id):
                raise ValueError(f"USB id {usb_id!r} is not VID:PID in upper-case hex")
        return ids

    def matches_usb(self, vid: int | None, pid: int | None) -> bool:
        """True when a serial port's USB vendor/product id belongs to this board."""
        if vid is None or pid is None:
            return False
        for usb_id in self.usb_ids:
            v, p = usb_id.split(":")
            if int(v, 16) == vid and (p == "*" or int(p, 16) == pid):
                return True
        return False


class SiteQuantity(_Profile):
    """A quantity the contract lacks, as the site must declare it: the gateway config's
    ``[quantities.NAME]`` (same keys) before the sensor's readings are accepted."""

    unit: str
    domain: str
    min: float
    max: float


class SensorProfile(_Profile):
    """One sensor kind: what it measures and how it is wired."""

    kind: str = Field(pattern=SENSOR_KIND_PATTERN)
    description: str
    quantities: tuple[str, ...] = Field(min_length=1)
    # "pin": a GPIO or ADC pin read directly (an analog module, a digital output)
    bus: Literal["i2c", "uart", "pulse", "onewire", "spi", "pin"]
    default_address: int | None = Field(default=None, ge=0, le=0x7F)
    min_interval_s: int = Field(default=1, ge=1)
    # Quantities beyond the contract this sensor measures (see docs/new-sensor.md).
    site_quantities: dict[str, SiteQuantity] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known_quantities(self) -> SensorProfile:
        for name, q in self.site_quantities.items():
            try:
                site_quantity(name, q.unit, q.domain, q.min, q.max)
            except QuantityError as exc:
                raise ValueError(f"site_quantities.{name}: {exc.why}") from None
        unknown = sorted(set(self.quantities) - QUANTITIES - set(self.site_quantities))
        if unknown:
            raise ValueError(f"unknown quantities {unknown} (see the wire contract, or "
                             "declare them under [site_quantities.NAME])")
        return self


def _load(path: Path, model: type[M], key: str) -> M:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
        profile = model.model_validate(raw)
    except (OSError, tomllib.TOMLDecodeError, ValidationError) as exc:
        raise CatalogueError(f"profile {path} is invalid: {exc}".splitlines()[0]) from None
    if getattr(profile, key) != path.stem:
        raise CatalogueError(f"profile {path}: {key} must equal the file name '{path.stem}'")
    return profile


@cache
def boards(directory: Path = BOARDS_DIR) -> dict[str, BoardProfile]:
    """Every board profile, by name (read once per process)."""
    return {p.stem: _load(p, BoardProfile, "name") for p in sorted(directory.glob("*.toml"))}


@cache
def sensors(directory: Path = SENSORS_DIR) -> dict[str, SensorProfile]:
    """Every sensor profile, by kind (read once per process)."""
    return {p.stem: _load(p, SensorProfile, "kind") for p in sorted(directory.glob("*.toml"))}


def board(name: str) -> BoardProfile:
    """The profile of board ``name``, or :class:`UnknownBoardError`."""
    known = boards()
    if name not in known:
        raise UnknownBoardError(name, sorted(known))
    return known[name]


def sensor(kind: str) -> SensorProfile:
    """The profile of sensor ``kind``, or :class:`UnknownSensorError`."""
    known = sensors()
    if kind not in known:
        raise UnknownSensorError(kind, sorted(known))
    return known[kind]


def boards_for_usb(vid: int | None, pid: int | None) -> list[str]:
    """Names of the boards whose USB ids match (several boards may share a bridge chip)."""
    return [b.name for b in boards().values() if b.matches_usb(vid, pid)]


def board_for_platform(platform: str) -> list[str]:
    """Names of the boards whose MicroPython ``sys.platform`` is ``platform``."""
    return [b.name for b in boards().values() if platform in b.platforms]
