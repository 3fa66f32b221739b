"""What the centre reads from the shared store: the one reader API of the city.

The city console, ``livinglab alerts`` and the SensorThings API never read a
gateway's files or a site's broker: everything they show comes from the points
the gateways wrote (wire contract, "Additions (third turn)"). This module is the
contract between them and the store: plain frozen rows, and a
:class:`CentreReader` protocol implemented once per store kind next to its
writer (``sqlite``, ``influxdb1``, ``influxdb2`` for InfluxDB and
VictoriaMetrics).

Rules every implementation keeps:

- A bounded number of store queries per call, whatever the number of devices or
  sites (never a query per device); ``sites`` empty means every site.
- Strings come from the ``{measurement}_info`` companions (VictoriaMetrics drops
  string fields), numbers from the point itself.
- Blocking and read-only; callers in asyncio code use ``asyncio.to_thread``.
- Every failure is :class:`~gateway.stores.reading.StoreUnreadable` with a line a
  user can act on; ``[store] read_urls`` are tried in order before giving up.
- Times are Unix milliseconds (UTC) throughout.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from .reading import Reading

__all__ = ["RESERVED_MEASUREMENTS", "CentreReader", "DeliveryRow", "DevicePoint",
           "GatewayPoint", "RejectionRow", "SeriesPoint", "StationPoint", "is_reading_measurement"]

#: Measurements that hold no readings (wire contract, "Reserved names"); plus every
#: ``*_info`` companion.
RESERVED_MEASUREMENTS = frozenset({"device", "delivery", "gateway", "station", "rejections"})


def is_reading_measurement(name: str) -> bool:
    """True for a domain (``air``, ``noise``...), false for reserved and ``*_info`` names."""
    return name not in RESERVED_MEASUREMENTS and not name.endswith("_info")


@dataclass(frozen=True)
class GatewayPoint:
    """The latest ``gateway`` point of one gateway (wire contract, "Gateway health")."""

    site: str
    gateway: str
    time_ms: int
    up: float = 1.0
    broker_connected: float = 0.0
    buffer_points: float = 0.0
    buffer_oldest_s: float = 0.0
    disk_free_bytes: float = 0.0
    devices_online: float = 0.0
    uptime_s: float = 0.0
    interval_s: float = 30.0
    version: str = ""


@dataclass(frozen=True)
class DevicePoint:
    """The latest ``device`` point of one device (status), numbers and strings merged.

    ``fields`` holds the float fields the point had (``online``, ``rssi``,
    ``heap_free``, ``uptime``, ``interval_s``, ``boot``, ``dropped``,
    ``sensor_errors``); ``strings`` the string fields from ``device_info``
    (``fw``, ``board``, ``update_state``, ``update_version``, ``update_reason``).
    Absent keys were absent in the status.
    """

    site: str
    device: str
    time_ms: int
    fields: dict[str, float] = field(default_factory=dict)
    strings: dict[str, str] = field(default_factory=dict)

    @property
    def online(self) -> float | None:
        return self.fields.get("online")


@dataclass(frozen=True)
class StationPoint:
    """One ``station`` point: a device's metadata as of ``time_ms`` (the change)."""

    site: str
    device: str
    time_ms: int
    lat: float | None = None
    lon: float | None = None
    deployment: int = 0
    retired: bool = False
    board: str = ""
    sensors: tuple[str, ...] = ()
    room: str = ""
    zone: str = ""
    note: str = ""


@dataclass(frozen=True)
class DeliveryRow:
    """One ``delivery`` point: counts of one device for the UTC hour starting ``hour_ms``."""

    site: str
    device: str
    hour_ms: int
    received: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    missing: int = 0


@dataclass(frozen=True)
class RejectionRow:
    """One ``rejections`` point: a device's rejections for one reason in one UTC hour."""

    site: str
    device: str
    reason: str
    hour_ms: int
    count: int


@dataclass(frozen=True)
class SeriesPoint:
    """One step of a downsampled series: the mean over ``[time_ms, time_ms + step)``."""

    sensor: str
    time_ms: int
    value: float


class CentreReader(Protocol):
    """The shared store as the centre sees it. See the module docstring for the rules."""

    def check(self) -> None:
        """Raise StoreUnreadable unless the store answers."""

    def sites(self) -> list[str]:
        """Every site with any point in the store (readings, device, gateway, station)."""

    def gateways(self, sites: Sequence[str] = ()) -> list[GatewayPoint]:
        """The latest ``gateway`` point of every gateway (looking back ``lookback_s``)."""

    def devices(self, sites: Sequence[str] = ()) -> list[DevicePoint]:
        """The latest ``device`` point of every device."""

    def device_points(self, since_ms: int, until_ms: int,
                      sites: Sequence[str] = ()) -> list[DevicePoint]:
        """Every ``device`` point in ``[since_ms, until_ms)``, oldest first (update
        history for UpdateFailed, offline durations)."""

    def stations(self, sites: Sequence[str] = ()) -> list[StationPoint]:
        """The latest ``station`` point of every device: where it stands now."""

    def station_history(self, sites: Sequence[str] = (),
                        devices: Sequence[str] = ()) -> list[StationPoint]:
        """Every ``station`` point, oldest first (Locations, HistoricalLocations)."""

    def latest_reading_times(self, sites: Sequence[str] = ()) -> dict[tuple[str, str], int]:
        """(site, device) -> newest sample time among its readings (non-reserved
        measurements), looking back at most ``[console] lookback_s``."""

    def latest_values(self, sites: Sequence[str] = (), devices: Sequence[str] = (),
                      since_ms: int | None = None) -> list[Reading]:
        """The newest value of each (site, device, sensor, domain, quantity), looking
        back ``lookback_s``, or only as far as ``since_ms`` when given (the console's
        last hour: a shorter look is a cheaper query)."""

    def readings(self, since_ms: int, until_ms: int, sites: Sequence[str] = (),
                 devices: Sequence[str] = (), domains: Sequence[str] = (),
                 quantities: Sequence[str] = ()) -> Iterator[Reading]:
        """Every reading in ``[since_ms, until_ms)`` matching the filters (empty = all),
        sorted by (time, site, device, sensor, quantity), streamed in time chunks so
        memory stays bounded for any range."""

    def series(self, site: str, device: str, domain: str, quantity: str,
               since_ms: int, until_ms: int, step_ms: int) -> list[SeriesPoint]:
        """One quantity of one device averaged per ``step_ms`` in the store's query,
        one line per sensor."""

    def delivery(self, since_ms: int, until_ms: int,
                 sites: Sequence[str] = ()) -> list[DeliveryRow]:
        """Every ``delivery`` point with hour start in ``[since_ms, until_ms)``."""

    def rejections(self, since_ms: int, until_ms: int,
                   sites: Sequence[str] = ()) -> list[RejectionRow]:
        """Every ``rejections`` point with hour start in ``[since_ms, until_ms)``."""

    def queries(self) -> int:
        """How many store queries this reader has sent (benches, the bounded-count tests)."""

    def close(self) -> None: ...
