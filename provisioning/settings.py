"""The ``[provisioning]`` and ``[wifi]`` config sections, parsed at the edge.

Their schema (and every default) is in ``protocols.config`` with the rest of the
config; this module resolves them into :class:`Settings`, the paths and logins
provisioning works with.

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

from pydantic import BaseModel, ConfigDict

from protocols.config import Config, ProvisioningSection, WifiSection


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


WifiSettings = WifiSection
ProvisioningSettings = ProvisioningSection


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
    """The provisioning view of a loaded config (sections already validated)."""
    wifi, prov = cfg.wifi, cfg.provisioning
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
