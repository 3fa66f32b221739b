"""The ``[provisioning]`` and ``[wifi]`` config sections, parsed at the edge.

``gateway.config`` keeps these sections as plain tables; this module is their
only reader, so every provisioning default lives here.

```toml
[wifi]
ssid = "lab-iot"
password = "..."

[provisioning]
interval_s = 30                       # default sampling period written to devices
device_mqtt_host = "10.0.0.2"         # the broker as the devices see it ([mqtt] host if empty)
mosquitto_pid_file = "/run/mosquitto/mosquitto.pid"   # SIGHUP after each sync

[provisioning.devices.air-0001]       # optional per-device defaults for `device flash`
sensors = ["scd41", "pms5003@uart1"]
location = "room 2.14, window"
calibration = {scd41 = {co2_offset = -12}}
```
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from protocols.config import Config

from .errors import SettingsError


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WifiSettings(_Section):
    ssid: str = ""
    password: str = ""


class DeviceDefaults(_Section):
    sensors: tuple[str, ...] = ()
    location: str = ""
    interval_s: int | None = Field(default=None, ge=1, le=86400)
    calibration: dict[str, Any] = Field(default_factory=dict)


class ProvisioningSettings(_Section):
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


class Settings(_Section):
    """Everything provisioning reads from a config, paths resolved."""

    site: str
    data_dir: Path
    prefix: str
    gateway_id: str
    mqtt_host: str
    mqtt_port: int
    gateway_username: str
    gateway_password: str
    #: ``[mqtt] operator_username/password``: config and update topics (`fleet update`)
    operator_username: str = ""
    operator_password: str = ""
    mqtt_ca_file: Path | None = None  # set: devices and the gateway speak verified TLS
    # The host side's client certificate ([mqtt] cert_file/key_file), if the broker asks one.
    mqtt_cert_file: Path | None = None
    mqtt_key_file: Path | None = None
    wifi: WifiSettings
    #: ``[console] mqtt_username/mqtt_password``: a read-only login for the console
    console_username: str = ""
    console_password: str = ""
    prov: ProvisioningSettings

    def path(self, p: Path) -> Path:
        return p if p.is_absolute() else self.data_dir / p

    @property
    def password_file(self) -> Path:
        return self.path(self.prov.password_file)

    @property
    def acl_file(self) -> Path:
        return self.path(self.prov.acl_file)

    @property
    def mosquitto_snippet(self) -> Path:
        return self.path(self.prov.mosquitto_snippet)

    @property
    def secrets_dir(self) -> Path:
        return self.path(self.prov.secrets_dir)

    @property
    def device_mqtt_host(self) -> str:
        return self.prov.device_mqtt_host or self.mqtt_host

    @property
    def device_mqtt_port(self) -> int:
        return self.prov.device_mqtt_port or self.mqtt_port


def settings_from_config(cfg: Config) -> Settings:
    """Parse the provisioning-owned sections of ``cfg``; one-line :class:`SettingsError`."""
    try:
        wifi = WifiSettings.model_validate(cfg.wifi)
    except ValidationError as exc:
        raise SettingsError(_one_line("wifi", exc)) from None
    try:
        prov = ProvisioningSettings.model_validate(cfg.provisioning)
    except ValidationError as exc:
        raise SettingsError(_one_line("provisioning", exc)) from None
    return Settings(
        site=cfg.site, data_dir=cfg.gateway.data_dir, prefix=cfg.mqtt.topic_prefix,
        gateway_id=cfg.gateway.id, mqtt_host=cfg.mqtt.host, mqtt_port=cfg.mqtt.port,
        gateway_username=cfg.mqtt.username, gateway_password=cfg.mqtt.password,
        operator_username=cfg.mqtt.operator_username,
        operator_password=cfg.mqtt.operator_password,
        console_username=cfg.console.mqtt_username,
        console_password=cfg.console.mqtt_password, mqtt_ca_file=cfg.mqtt_ca_file,
        mqtt_cert_file=cfg.mqtt.cert_file, mqtt_key_file=cfg.mqtt.key_file,
        wifi=wifi, prov=prov)


def _one_line(section: str, exc: ValidationError) -> str:
    err = exc.errors()[0]
    key = ".".join(str(p) for p in err["loc"])
    return f"config key '{section}.{key}': {err['msg']}"
