"""What a simulated fleet is made of: device ids, kinds, sensors, per-device config.

Pure functions only, so the plan can be tested without starting a process. The
``[fleet]`` config section is parsed here into :class:`FleetSettings` (the gateway
keeps it as a plain table and leaves it to us).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gateway.config import Config

from .fleet_errors import FleetError

Kind = Literal["air", "light", "flow"]
KINDS: tuple[Kind, ...] = ("air", "light", "flow")

# The sensors each kind of device carries, in the order the firmware samples them.
KIND_SENSORS: Mapping[Kind, tuple[str, ...]] = {
    "air": ("scd41", "bme280", "pms5003"),
    "light": ("bh1750",),
    "flow": ("yfs201",),
}


class FleetSettings(BaseModel):
    """The ``[fleet]`` config section. Defaults live here and only here."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Default sampling period when --interval is not given.
    interval_s: int = Field(default=30, ge=1, le=86400)
    # MicroPython heap per device (`micropython -X heapsize=`): a Pi runs 20+ devices,
    # and the real boards have ~150 KB free, so the simulation should not get more.
    heapsize: str = Field(default="256k", pattern=r"^[0-9]+[kKmM]?$")
    # Where the per-device flash dirs go; empty means <gateway.data_dir>/fleet.
    run_dir: str = ""
    # Simulated environment the firmware's fake sensors follow.
    profile: str = "office"
    # Base of the per-device simulation seeds (device i gets seed + i).
    seed: int = Field(default=1, ge=0)
    # Restart a device whose process exits, with exponential backoff up to this bound.
    restart: bool = True
    max_backoff_s: float = Field(default=30.0, gt=0, le=3600)
    # Firmware updates (docs/ota.md): where `fleet update` serves the packs (default:
    # the host devices reach the broker at; port 0 = any free one), and how long a
    # simulated device runs a new version before confirming it.
    ota_http_host: str = ""
    ota_http_port: int = Field(default=0, ge=0, le=65535)
    ota_confirm_after_s: int = Field(default=60, ge=1, le=86400)


class DeviceSpec(BaseModel):
    """One simulated device: its id, kind and simulation seed."""

    model_config = ConfigDict(frozen=True)

    device: str
    kind: Kind
    seed: int

    @property
    def sensors(self) -> tuple[str, ...]:
        return KIND_SENSORS[self.kind]


class BrokerTarget(BaseModel):
    """Where devices connect: the MQTT part of a device.json."""

    model_config = ConfigDict(frozen=True)

    host: str
    port: int
    username: str = ""
    password: str = ""
    keepalive: int = 60
    prefix: str = "livinglab/v1"


def parse_settings(raw: Mapping[str, Any]) -> FleetSettings:
    """Validate the ``[fleet]`` table; a bad key is a one-line :class:`FleetError`."""
    try:
        return FleetSettings.model_validate(dict(raw))
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"]) or "(table)"
        raise FleetError(f"config key 'fleet.{key}': {err['msg']}") from None


def broker_target(cfg: Config) -> BrokerTarget:
    """The broker the devices use, from the ``[mqtt]`` section of a gateway config."""
    m = cfg.mqtt
    if m.ca_file or m.cert_file:
        raise FleetError("the simulated fleet speaks plain MQTT (the unix-port firmware has no "
                         "TLS); point [mqtt] at a plain loopback/LAN listener for simulation")
    return BrokerTarget(host=m.host, port=m.port, username=m.username, password=m.password,
                        keepalive=max(m.keepalive, 10), prefix=m.topic_prefix)


def device_id(kind: Kind, number: int) -> str:
    """``air-0001``: kind plus a 1-based, zero-padded number (ids stay sortable)."""
    return f"{kind}-{number:04d}"


def plan_round_robin(n: int, seed: int = 1, kinds: Sequence[Kind] = KINDS) -> list[DeviceSpec]:
    """N devices spread over ``kinds`` in turn: air-0001, light-0001, flow-0001, air-0002..."""
    if n < 1:
        raise FleetError(f"--devices must be at least 1, not {n}")
    counts: dict[Kind, int] = {}
    out: list[DeviceSpec] = []
    for i in range(n):
        kind = kinds[i % len(kinds)]
        counts[kind] = counts.get(kind, 0) + 1
        out.append(DeviceSpec(device=device_id(kind, counts[kind]), kind=kind, seed=seed + i))
    return out


def plan_counts(counts: Mapping[Kind, int], seed: int = 1) -> list[DeviceSpec]:
    """A fixed number of devices per kind (the demo's 2 air, 1 light, 1 flow)."""
    out: list[DeviceSpec] = []
    for kind in KINDS:
        for number in range(1, counts.get(kind, 0) + 1):
            out.append(DeviceSpec(device=device_id(kind, number), kind=kind,
                                  seed=seed + len(out)))
    if not out:
        raise FleetError("the fleet has no devices (ask for at least one)")
    return out


def local_tz_h() -> float:
    """This machine's UTC offset in hours, so the simulated office keeps local hours."""
    return time.localtime().tm_gmtoff / 3600.0


def device_config(spec: DeviceSpec, *, site: str, broker: BrokerTarget, interval_s: int,
                  profile: str, wifi: Mapping[str, Any] | None = None,
                  tz_h: float | None = None, ota: Mapping[str, Any] | None = None
                  ) -> dict[str, Any]:
    """The device.json the firmware reads at boot (see docs/device-config.md)."""
    sim: dict[str, Any] = {"seed": spec.seed, "profile": profile}
    if tz_h is not None:
        sim["tz_h"] = tz_h
    return {
        "device": spec.device,
        "site": site,
        "board": "unix",
        "prefix": broker.prefix,
        "wifi": dict(wifi or {}),
        "mqtt": {"host": broker.host, "port": broker.port, "username": broker.username,
                 "password": broker.password, "keepalive": broker.keepalive},
        "interval_s": interval_s,
        "sensors": [{"kind": kind} for kind in spec.sensors],
        "calibration": {},
        "sim": sim,
        "ota": dict(ota or {}),
    }
