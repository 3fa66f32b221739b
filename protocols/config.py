"""Config: TOML file plus ``LIVINGLAB_<SECTION>__<KEY>`` environment overrides.

The config is a public interface like the wire contract (interfaces.md), read by
every package and owned by none, so it lives in ``protocols``. Parsed once at the
edge into frozen, typed pydantic models, one per section; every default is a field
default here, except the two that depend on where the file is (``data_dir`` next
to the file, the SQLite store inside ``data_dir``), which :func:`parse_config`
fills in. Unknown keys are errors (a typo must not silently fall back to a
default). Environment overrides win over the file; they are one small function
(:func:`_env_overrides`) rather than pydantic-settings, which would not resolve
paths against the file or give the one-line errors the CLI prints.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    StrictFloat,
    StrictInt,
    ValidationError,
)

from .config_sections import (
    AlertsSection,
    DeviceDefaults,
    DeviceKind,
    FleetSection,
    ProvisioningSection,
    Section,
    SensorThingsSection,
    ThresholdSection,
    WifiSection,
)
from .errors import ConfigError
from .ids import ID_PATTERN
from .quantities import QuantityError, Registry, site_quantity

__all__ = ["BUFFER_FILE", "INVENTORY_FILE", "LASTSEEN_FILE", "MQTT_TLS_PORT", "AlertsSection",
           "Config", "ConfigError", "ConsoleSection", "DeviceDefaults", "DeviceKind",
           "ExportSection", "FleetSection", "GatewaySection", "MqttSection",
           "ProvisioningSection", "QuantitySection", "SensorThingsSection", "StoreSection",
           "ThresholdSection", "WifiSection", "load_config", "parse_config"]

ENV_PREFIX = "LIVINGLAB_"
# Where `livinglab broker certs` puts the site's CA, relative to [gateway] data_dir.
DEFAULT_CA_FILE = Path("broker/tls/ca.crt")
MQTT_TLS_PORT = 8883
# The files several processes share under [gateway] data_dir (the gateway writes them;
# the console, reports and `devices` read them): named once, here.
BUFFER_FILE = "buffer.sqlite"
LASTSEEN_FILE = "lastseen.sqlite"
INVENTORY_FILE = "inventory.sqlite"
# The console's token guards a network-reachable page: shorter ones are guessed.
MIN_CONSOLE_TOKEN = 16




class GatewaySection(Section):
    id: str = Field(default="gw-01", pattern=ID_PATTERN)
    data_dir: Path = Path("./var")
    # Durable buffer bound (bytes of the SQLite file). When reached the gateway
    # stops acknowledging MQTT messages, so the broker keeps them (backpressure).
    buffer_max_bytes: int = Field(default=512 * 1024 * 1024, ge=1024 * 1024)
    # Loopback HTTP port for /healthz and /metrics; 0 turns the server off.
    health_port: int = Field(default=9108, ge=0, le=65535)
    health_host: str = "127.0.0.1"
    # Rejected messages kept for `livinglab gateway rejected` (oldest dropped first).
    quarantine_max: int = Field(default=10_000, ge=1)
    # Serial ports (USB boards without Wi-Fi) whose JSON lines feed the pipeline.
    serial_ports: tuple[str, ...] = ()
    serial_baud: int = Field(default=115200, ge=300)
    # Delivery accounting (wire contract): counts per device and hour, written to the
    # store as ``delivery`` points every ``delivery_flush_s`` (the contract: <= 60 s).
    delivery_accounting: bool = True
    delivery_flush_s: float = Field(default=30.0, gt=0, le=60)
    # "fsync": every commit of the durable buffer reaches the disk (fsync of its
    # WAL) before the MQTT ack goes out, so a power cut loses nothing acknowledged.
    # "os-cache": the commit reaches the OS page cache only (safe against a
    # gateway crash or kill -9, not against a power cut); faster, fewer writes.
    durability: Literal["fsync", "os-cache"] = "fsync"
    # Commit grouping: wait until the oldest unacked message is this old before
    # committing, so one fsync and one set of WAL pages cover the whole group
    # (SD-card wear). Acks always wait for the commit. A window also ends once half
    # the Receive Maximum is pending, so at high rates a group fills well before
    # this: 2.5 s only shows at low rates, where it is the wear (issue 21: 10 msg/s
    # fits 4 bytes written per payload byte; end-to-end p99 stays under 3 s).
    commit_window_s: float = Field(default=2.5, ge=0, le=5)
    # How long the dedup record keeps a (device, boot, seq): as long as the broker
    # may redeliver (the MQTT session expiry, 7 days by default).
    dedup_window_s: float = Field(default=7 * 24 * 3600.0, ge=10)
    # Gateway health points to the store (wire contract, "Gateway health"), 5..60 s.
    store_health_s: float = Field(default=30.0, ge=5, le=60)
    # The quarantine's own bound (bytes), outside buffer_max_bytes: one device's
    # rejected messages can never use up the site's outage buffer.
    quarantine_max_bytes: int = Field(default=64 * 1024 * 1024, ge=64 * 1024)
    # Optional: the device ids each serial port may speak for ("/dev/ttyACM0" = ["air-0007"]).
    # A port listed in serial_ports but not here may speak for any id (doctor warns).
    serial_ids: dict[str, tuple[Annotated[str, Field(pattern=ID_PATTERN)], ...]] = Field(
        default_factory=dict)


class MqttSection(Section):
    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    username: str = ""
    password: str = ""
    # Verified TLS (port 8883 unless given): the broker's certificate must chain to
    # ca_file and name `host`. Empty ca_file: <data_dir>/broker/tls/ca.crt, the CA
    # `livinglab broker certs` made. A ca_file alone (without tls) also turns TLS on.
    tls: bool = False
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    # Fixed client id so the broker keeps the persistent session across restarts;
    # empty means "livinglab-gateway-<gateway.id>".
    client_id: str = ""
    keepalive: int = Field(default=30, ge=5, le=3600)
    topic_prefix: str = "livinglab/v1"
    # MQTT 5 lets the gateway announce a large Receive Maximum (how many unacked
    # QoS 1 messages the broker may send at once) and a session expiry; "3.1.1"
    # is for brokers without v5 (the demo's embedded amqtt).
    protocol: Literal["5", "3.1.1"] = "5"
    receive_maximum: int = Field(default=1000, ge=1, le=65535)
    # How long the broker keeps the gateway's session (and queues for it) while
    # it is down. 7 days by default.
    session_expiry_s: int = Field(default=7 * 24 * 3600, ge=1)
    # The operators' account (config and update topics: `fleet update`, `device set`
    # pushes). The gateway's own account only reads the site's topics and writes its
    # own _gateway/{id}/#. Empty: the [mqtt] login (a small lab with one account).
    operator_username: str = ""
    operator_password: str = ""


class StoreSection(Section):
    kind: Literal["influxdb2", "influxdb1", "sqlite"] = "sqlite"
    url: str = "http://127.0.0.1:8086"
    token: str = ""
    org: str = "livinglab"
    bucket: str = "livinglab"
    database: str = "livinglab"
    username: str = ""
    password: str = ""
    path: Path = Path("./var/readings.sqlite")
    # CA for an https:// url (influxdb1/influxdb2); empty: the system's trust store.
    ca_file: Path | None = None
    batch_size: int = Field(default=5000, ge=1, le=100_000)
    flush_interval_s: float = Field(default=0.2, gt=0, le=60)
    timeout_s: float = Field(default=10.0, gt=0, le=300)
    max_backoff_s: float = Field(default=30.0, gt=0, le=3600)
    # What speaks the v2 write API at `url`: "auto" asks the server once, "influxdb" or
    # "victoriametrics" say it. Replaces [console] query_api and [export] influxdb2_reader.
    flavour: Literal["auto", "influxdb", "victoriametrics"] = "auto"
    # Where readers query, tried in order (empty: [url]); e.g. both VictoriaMetrics
    # nodes behind vmagent, so a reader keeps answering when one node is lost.
    read_urls: tuple[str, ...] = ()

    @property
    def reader_urls(self) -> tuple[str, ...]:
        return self.read_urls or (self.url,)


class QuantitySection(Section):
    """``[quantities.NAME]``: a site-defined quantity (see docs/new-sensor.md). No defaults:
    a quantity without a unit, domain or range would be accepted blindly."""

    unit: str
    domain: str
    min: StrictFloat | StrictInt
    max: StrictFloat | StrictInt


class ConsoleSection(Section):
    """``livinglab console``: where it listens and who may look (docs/console.md)."""

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    # Required when host is not a loopback address (the console refuses to start without).
    token: str = ""
    # The console's own broker login for the retained status topics (read-only is
    # enough); empty means the [mqtt] login.
    mqtt_username: str = ""
    mqtt_password: str = ""
    # influxdb2 stores: how to read them back. "auto" asks the server (VictoriaMetrics
    # answers /api/v1/status/buildinfo), "flux" for InfluxDB 2.x, "victoria" for
    # VictoriaMetrics' Prometheus query API.
    query_api: Literal["auto", "flux", "victoria"] = "auto"
    # "gateway": one site's console (its data_dir, broker and store); "city": every
    # site in the shared store, from the store alone (no data_dir, no broker, no site).
    scope: Literal["gateway", "city"] = "gateway"
    # City scope: the sites to show; empty = every site in the store.
    sites: tuple[str, ...] = ()
    # Map tiles URL template ("https://tile.openstreetmap.org/{z}/{x}/{y}.png");
    # empty = no basemap (the map still shows the stations: a lab may have no internet).
    map_tiles: str = ""
    # How far back "latest" looks (derived states, latest values): 30 days.
    lookback_s: int = Field(default=30 * 86400, ge=60)
    # Life of the signed session cookie the token login sets.
    session_s: int = Field(default=12 * 3600, ge=60)


class ExportSection(Section):
    # Licence of the open-data package (an SPDX id or a URL), e.g. "CC-BY-4.0".
    licence: str = "CC-BY-4.0"
    licence_title: str = "Creative Commons Attribution 4.0"
    licence_url: str = "https://creativecommons.org/licenses/by/4.0/"
    # Time span of one query to the store; memory is bounded by what one chunk holds.
    chunk_s: int = Field(default=3600, ge=60, le=31 * 86400)
    # How `influxdb2` stores are read: "auto" probes /health (VictoriaMetrics answers
    # "OK", InfluxDB 2 a JSON document), "flux" or "victoriametrics" force one.
    influxdb2_reader: Literal["auto", "flux", "victoriametrics"] = "auto"


class Config(Section):
    # Required by every command that serves one site (gateway, device, fleet, broker,
    # doctor, devices, the gateway-scope console); `load_config(..., need_site=False)`
    # for those that serve every site in the store (alerts, sensorthings, city console).
    site: str = Field(default="", pattern=r"^$|" + ID_PATTERN)
    gateway: GatewaySection = GatewaySection()
    mqtt: MqttSection = MqttSection()
    store: StoreSection = StoreSection()
    console: ConsoleSection = ConsoleSection()
    export: ExportSection = ExportSection()
    sensorthings: SensorThingsSection = SensorThingsSection()
    alerts: AlertsSection = AlertsSection()
    fleet: FleetSection = FleetSection()
    provisioning: ProvisioningSection = ProvisioningSection()
    wifi: WifiSection = WifiSection()
    quantities: dict[str, QuantitySection] = Field(default_factory=dict)

    @property
    def registry(self) -> Registry:
        """The built-in quantities plus this site's ``[quantities]`` (checked by
        :func:`parse_config`, so this does not raise for a loaded config)."""
        return Registry(site_quantity(name, q.unit, q.domain, q.min, q.max)
                        for name, q in self.quantities.items())

    @property
    def buffer_file(self) -> Path:
        """The durable buffer (readings, dedup record, quarantine, delivery accounting)."""
        return self.gateway.data_dir / BUFFER_FILE

    @property
    def lastseen_file(self) -> Path:
        return self.gateway.data_dir / LASTSEEN_FILE

    @property
    def inventory_file(self) -> Path:
        return self.gateway.data_dir / INVENTORY_FILE

    @property
    def alerts_state_file(self) -> Path:
        return self.alerts.state_file or self.gateway.data_dir / "alerts.json"

    @property
    def client_id(self) -> str:
        return self.mqtt.client_id or f"livinglab-gateway-{self.gateway.id}"

    @property
    def mqtt_tls(self) -> bool:
        return self.mqtt.tls or self.mqtt.ca_file is not None

    @property
    def mqtt_operator(self) -> tuple[str, str]:
        """(username, password) for config and update topics (`fleet update`): the
        operators' account, else the [mqtt] login (a small lab with one account)."""
        if self.mqtt.operator_username:
            return self.mqtt.operator_username, self.mqtt.operator_password
        return self.mqtt.username, self.mqtt.password

    @property
    def mqtt_ca_file(self) -> Path | None:
        """The CA the broker's certificate must chain to (None: no TLS)."""
        if self.mqtt.ca_file is not None:
            return self.mqtt.ca_file
        if self.mqtt.tls:
            return self.gateway.data_dir / DEFAULT_CA_FILE
        return None


def _env_overrides(env: Mapping[str, str]) -> dict[str, Any]:
    """``LIVINGLAB_MQTT__PORT=1884`` -> ``{"mqtt": {"port": "1884"}}``."""
    out: dict[str, Any] = {}
    for name, value in env.items():
        if not name.startswith(ENV_PREFIX):
            continue
        parts = name[len(ENV_PREFIX):].lower().split("__")
        if len(parts) == 1 and parts[0] == "site":
            out["site"] = value
        elif len(parts) == 2 and parts[0] in Config.model_fields and parts[1]:
            out.setdefault(parts[0], {})[parts[1]] = value
    return out


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def _resolve_paths(raw: dict[str, Any], base_dir: Path) -> dict[str, Any]:
    """Relative paths in a config file are relative to the file, not the cwd."""
    for section, key in (("gateway", "data_dir"), ("store", "path"), ("store", "ca_file"),
                         ("alerts", "state_file"),
                         ("mqtt", "ca_file"), ("mqtt", "cert_file"), ("mqtt", "key_file")):
        table = raw.get(section)
        if isinstance(table, dict) and isinstance(table.get(key), str):
            if not table[key]:
                table[key] = None  # "" means "not set", not the current directory
                continue
            p = Path(table[key])
            if not p.is_absolute():
                table[key] = str(base_dir / p)
    return raw


def parse_config(raw: Mapping[str, Any], base_dir: Path = Path("."),
                 env: Mapping[str, str] | None = None, need_site: bool = True) -> Config:
    """Validate a config mapping (+ env overrides) into a frozen :class:`Config`.

    ``need_site``: the command serves one site, so ``site`` is required."""
    data = _merge(dict(raw), _env_overrides(os.environ if env is None else env))
    data = _resolve_paths({k: dict(v) if isinstance(v, dict) else v for k, v in data.items()},
                          base_dir)
    if "store" not in raw or "path" not in raw.get("store", {}):
        # default sqlite path follows data_dir
        gw = data.get("gateway", {})
        data_dir = Path(gw.get("data_dir", base_dir / "var")) if isinstance(gw, dict) else None
        if data_dir is not None and "path" not in data.get("store", {}):
            data.setdefault("store", {})["path"] = str(data_dir / "readings.sqlite")
    if "gateway" not in data or "data_dir" not in data["gateway"]:
        data.setdefault("gateway", {})["data_dir"] = str(base_dir / "var")
    mqtt = data.get("mqtt")
    if isinstance(mqtt, dict) and "port" not in mqtt and str(mqtt.get("tls", "")).lower() in (
            "true", "1", "yes"):
        mqtt["port"] = MQTT_TLS_PORT
    try:
        cfg = Config.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        raise ConfigError(f"config key '{key}': {err['msg']}") from None
    try:
        cfg.registry  # noqa: B018 - refuse a bad [quantities.NAME] at start, naming the key
    except QuantityError as exc:
        key = ".".join(p for p in ("quantities", exc.name, exc.field) if p)
        raise ConfigError(f"config key '{key}': {exc.why}") from None
    if cfg.console.token and len(cfg.console.token.strip()) < MIN_CONSOLE_TOKEN:
        raise ConfigError(f"config key 'console.token': at least {MIN_CONSOLE_TOKEN} characters "
                          "(a short token is guessed; make one with: python3 -c 'import "
                          "secrets; print(secrets.token_urlsafe(24))')")
    if need_site and not cfg.site:
        raise ConfigError("config key 'site': required by this command "
                          "(add site = \"your-site\" to the config file)")
    return cfg


def load_config(path: Path | str, env: Mapping[str, str] | None = None,
                need_site: bool = True) -> Config:
    """Read and validate a TOML config file; every failure is a one-line ConfigError."""
    p = Path(path)
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file {p} not found (pass --config PATH)") from None
    except PermissionError:
        raise ConfigError(f"config file {p} is not readable (check its permissions)") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {p} is not valid TOML: {exc}") from None
    return parse_config(raw, p.resolve().parent, env, need_site)
