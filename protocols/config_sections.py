"""The config sections of the commands around the gateway: the simulated fleet,
provisioning and Wi-Fi, the SensorThings API and the alerts.

Part of the one config (:mod:`protocols.config`, which loads and validates the
file); kept apart so neither module grows past what a reader takes in at once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

#: the kinds of simulated device (devices/fleet_plan.py)
DeviceKind = Literal["air", "light", "flow"]


class Section(BaseModel):
    """Every section: frozen, and an unknown key is an error (a typo must not silently
    fall back to a default)."""

    model_config = ConfigDict(extra="forbid", frozen=True)




class SensorThingsSection(Section):
    """``livinglab sensorthings``: the OGC SensorThings API over the shared store."""

    host: str = "127.0.0.1"
    port: int = Field(default=8090, ge=1, le=65535)
    # The public URL for @iot.selfLink and nextLinks behind a proxy; empty = from the request.
    base_url: str = ""


class ThresholdSection(Section):
    """``[[alerts.threshold]]``: an alert on readings of one quantity, with a duration and
    a hysteresis (docs/alerts.md)."""

    name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
    quantity: str = Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")
    above: float | None = None
    below: float | None = None
    for_s: float = Field(default=600.0, ge=0)
    hysteresis: float = Field(default=0.0, ge=0)
    severity: Literal["critical", "warning", "info"] = "warning"

    @model_validator(mode="after")
    def _one_side(self) -> ThresholdSection:
        if (self.above is None) == (self.below is None):
            raise ValueError("give exactly one of above or below")
        return self


class AlertsSection(Section):
    """``livinglab alerts``: rules over the shared store, sent to Alertmanager."""

    interval_s: float = Field(default=30.0, ge=1, le=3600)
    alertmanager_url: str = ""
    # Default <data_dir>/alerts.json (see Config.alerts_state_file).
    state_file: Path | None = None
    offline_for_s: float = Field(default=300.0, ge=0)
    backlog_s: float = Field(default=600.0, ge=0)
    disk_low_bytes: int = Field(default=200_000_000, ge=0)
    threshold: tuple[ThresholdSection, ...] = ()


class FleetSection(Section):
    """``[fleet]``: the simulated fleet (``livinglab fleet``, the demo; devices/fleet_plan.py)."""

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
    # Catalogue sensors added to every device of a kind, e.g. {air = ["sht4x"]}: how a
    # new sensor (docs/new-sensor.md) joins the simulated fleet.
    extra_sensors: dict[DeviceKind, tuple[str, ...]] = Field(default_factory=dict)
    # Firmware updates (docs/ota.md): where `fleet update` serves the packs (default:
    # the host devices reach the broker at; port 0 = any free one), and how long a
    # simulated device runs a new version before confirming it.
    ota_http_host: str = ""
    ota_http_port: int = Field(default=0, ge=0, le=65535)
    ota_confirm_after_s: int = Field(default=60, ge=1, le=86400)


class WifiSection(Section):
    """``[wifi]``: the network `device flash` writes into each board's device.json."""

    ssid: str = ""
    password: str = ""


class DeviceDefaults(Section):
    """``[provisioning.devices.ID]``: per-device defaults for `device flash`."""

    sensors: tuple[str, ...] = ()
    location: str = ""
    interval_s: int | None = Field(default=None, ge=1, le=86400)
    calibration: dict[str, Any] = Field(default_factory=dict)


class ProvisioningSection(Section):
    """``[provisioning]``: `device flash`, `broker sync` (provisioning/settings.py)."""

    interval_s: int = Field(default=30, ge=1, le=86400)
    keepalive: int = Field(default=60, ge=5, le=3600)
    device_mqtt_host: str = ""
    device_mqtt_port: int = Field(default=0, ge=0, le=65535)
    # Generated Mosquitto files; relative paths are under [gateway] data_dir.
    password_file: Path = Path("broker/passwd")
    acl_file: Path = Path("broker/acl")
    secrets_dir: Path = Path("broker/secrets")
    mosquitto_pid_file: Path | None = None
    # The Mosquitto config snippet `broker sync` writes (password/ACL files and, once
    # `broker certs` has run, the TLS listener on tls_port); include it from conf.d.
    mosquitto_snippet: Path = Path("broker/mosquitto.conf")
    tls_port: int = Field(default=8883, ge=1, le=65535)
    # "auto": the mosquitto_passwd binary when on PATH, else built-in PBKDF2;
    # "binary" or "python" to force one.
    hasher: str = Field(default="auto", pattern=r"^(auto|binary|python)$")
    wait_timeout_s: float = Field(default=60.0, gt=0, le=3600)
    baudrate: int = Field(default=115200, ge=300)
    devices: dict[str, DeviceDefaults] = Field(default_factory=dict)
