"""What a simulated fleet is made of: device ids, kinds, sensors, per-device config.

Pure functions only, so the plan can be tested without starting a process. The
``[fleet]`` config section is parsed here into :class:`FleetSettings` (the gateway
keeps it as a plain table and leaves it to us).
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from protocols.config import Config, FleetSection
from protocols.mqtt_tls import MqttTlsError, tls_context

from .fleet_errors import FleetError

Kind = Literal["air", "light", "flow"]
KINDS: tuple[Kind, ...] = ("air", "light", "flow")

# The sensors each kind of device carries, in the order the firmware samples them.
KIND_SENSORS: Mapping[Kind, tuple[str, ...]] = {
    "air": ("scd41", "bme280", "pms5003"),
    "light": ("bh1750",),
    "flow": ("yfs201",),
}


FleetSettings = FleetSection



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
    # Set: verified TLS with this CA (PEM or DER); devices get it as ca.der, like a
    # flashed board, and check the broker's certificate names `host`.
    ca_file: Path | None = None
    # The host side's client certificate ([mqtt] cert_file/key_file), never a device's.
    cert_file: Path | None = None
    key_file: Path | None = None

    def tls_context(self) -> ssl.SSLContext | None:
        """The host-side (monitor, probe) context: protocols.mqtt_tls, the one MQTT TLS
        setup (same CA, host name checked)."""
        if self.ca_file is None and self.cert_file is None:
            return None
        try:
            return tls_context(self.ca_file, self.cert_file, self.key_file)
        except MqttTlsError as exc:
            raise FleetError(str(exc)) from None

    def device_files(self) -> dict[str, bytes]:
        """Extra files for each simulated board's flash dir (the CA, in DER)."""
        if self.ca_file is None:
            return {}
        return {CA_FILE: ca_der(self.ca_file)}


CA_FILE = "ca.der"


def ca_der(path: Path) -> bytes:
    """A PEM or DER certificate file as DER (what the firmware loads)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise FleetError(f"cannot read CA file {path}: {exc.strerror} (run livinglab broker "
                         "certs, or fix [mqtt] ca_file)") from None
    if b"-----BEGIN" not in data:
        return data
    try:
        return ssl.PEM_cert_to_DER_cert(data.decode("ascii", "replace"))
    except ValueError:
        raise FleetError(f"{path} is not a PEM certificate (point [mqtt] ca_file at the "
                         "CA's ca.crt)") from None


def parse_settings(raw: FleetSection | Mapping[str, Any]) -> FleetSettings:
    """The ``[fleet]`` section (already typed by the config, or a plain table) with its
    sensors checked against the catalogue; a bad key is a one-line :class:`FleetError`."""
    try:
        settings = raw if isinstance(raw, FleetSection) else FleetSection.model_validate(
            dict(raw))
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"]) or "(table)"
        raise FleetError(f"config key 'fleet.{key}': {err['msg']}") from None
    from . import catalogue

    known = catalogue.sensors()
    for kind, extra in settings.extra_sensors.items():
        for sensor in extra:
            if sensor not in known:
                raise FleetError(f"config key 'fleet.extra_sensors.{kind}': unknown sensor "
                                 f"{sensor!r} (known: {', '.join(sorted(known))})")
    return settings


def broker_target(cfg: Config) -> BrokerTarget:
    """The broker the devices use, from the ``[mqtt]`` section of a gateway config."""
    m = cfg.mqtt
    return BrokerTarget(host=m.host, port=m.port, username=m.username, password=m.password,
                        keepalive=max(m.keepalive, 10), prefix=m.topic_prefix,
                        ca_file=cfg.mqtt_ca_file, cert_file=m.cert_file, key_file=m.key_file)


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
                  tz_h: float | None = None, extra_sensors: Sequence[str] = (),
                  ota: Mapping[str, Any] | None = None) -> dict[str, Any]:
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
                 "password": broker.password, "keepalive": broker.keepalive,
                 **({"tls": True, "ca": CA_FILE} if broker.ca_file is not None else {})},
        "interval_s": interval_s,
        "sensors": [{"kind": kind} for kind in (*spec.sensors, *extra_sensors)],
        "calibration": {},
        "sim": sim,
        "ota": dict(ota or {}),
    }
