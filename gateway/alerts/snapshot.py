"""One cycle's view of the store: a fixed handful of reader calls, whatever the fleet.

Every rule is a pure function of a :class:`Snapshot`, so the store is read once per
cycle here and nowhere else. The calls (each a bounded number of store queries by
the reader contract, :mod:`gateway.stores.centre`): the latest ``gateway``,
``device`` and ``station`` points, the latest reading time per device, the
``delivery`` points of the last complete UTC day (kept for the day, refreshed every
:data:`DELIVERY_REFRESH_S`), the readings of the thresholds' quantities over their
longest ``for_s`` (folded into a few numbers per device as they stream by), and
the ``device`` history of the last hour only when a device shows an update failure
the state does not know yet.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from protocols.config import AlertsSection, ThresholdSection

from ..stores.centre import CentreReader, DeliveryRow, DevicePoint, GatewayPoint, StationPoint
from ..stores.reading import Reading
from .model import device_ref

__all__ = ["DAY_MS", "DELIVERY_REFRESH_S", "FAILED_UPDATE_STATES", "UPDATE_WINDOW_MS",
           "Collector", "Snapshot", "ThresholdStats", "fold_readings", "threshold_window_ms"]

DAY_MS = 86_400_000
#: UpdateFailed fires for one hour from the first point with that (version, state).
UPDATE_WINDOW_MS = 3_600_000
#: How far before the hour the history looks, to tell "first seen" from "seen earlier".
UPDATE_MARGIN_MS = 600_000
FAILED_UPDATE_STATES = frozenset({"refused", "rolled_back"})
#: A corrected hour of yesterday may still arrive; re-read the day this often.
DELIVERY_REFRESH_S = 900


@dataclass(frozen=True)
class ThresholdStats:
    """One threshold's readings of one device in its window, all sensors pooled."""

    n: int
    low: float
    high: float
    latest_ms: int
    latest: float


@dataclass(frozen=True)
class Snapshot:
    now_ms: int
    gateways: tuple[GatewayPoint, ...] = ()
    devices: tuple[DevicePoint, ...] = ()
    stations: tuple[StationPoint, ...] = ()
    latest_reading: Mapping[tuple[str, str], int] = field(default_factory=dict)
    #: ``delivery`` rows of the last complete UTC day (``day_ms`` is its start)
    day_ms: int = 0
    delivery: tuple[DeliveryRow, ...] = ()
    #: threshold name -> (site, device) -> stats over the threshold's window
    thresholds: Mapping[str, Mapping[tuple[str, str], ThresholdStats]] = field(
        default_factory=dict)
    #: ``device`` points of the last hour (+ margin) when asked for, oldest first
    update_history: tuple[DevicePoint, ...] | None = None


def threshold_window_ms(t: ThresholdSection, interval_s: float) -> int:
    """``for_s``, or one evaluation interval when ``for_s`` is 0 (the latest readings)."""
    return int(max(t.for_s, interval_s) * 1000)


def fold_readings(readings: Iterable[Reading], thresholds: Sequence[ThresholdSection],
                  now_ms: int, interval_s: float
                  ) -> dict[str, dict[tuple[str, str], ThresholdStats]]:
    """Fold a stream of readings into per-device stats for each threshold. Memory grows
    with the devices, never with the readings. Pooled: any sensor of the device."""
    by_q: dict[str, list[tuple[str, int]]] = {}
    for t in thresholds:
        since = now_ms - threshold_window_ms(t, interval_s)
        by_q.setdefault(t.quantity, []).append((t.name, since))
    acc: dict[str, dict[tuple[str, str], list[float]]] = {t.name: {} for t in thresholds}
    for r in readings:
        for name, since in by_q.get(r.quantity, ()):
            if r.time_ms < since or r.time_ms > now_ms:
                continue
            key = (r.site, r.device)
            s = acc[name].get(key)
            if s is None:
                acc[name][key] = [1, r.value, r.value, r.time_ms, r.value]
                continue
            s[0] += 1
            s[1] = min(s[1], r.value)
            s[2] = max(s[2], r.value)
            if r.time_ms > s[3]:
                s[3], s[4] = r.time_ms, r.value
            elif r.time_ms == s[3]:  # two sensors at the same instant: keep the worse
                s[4] = max(s[4], r.value) if _above(thresholds, name) else min(s[4], r.value)
    return {name: {k: ThresholdStats(int(v[0]), v[1], v[2], int(v[3]), v[4])
                   for k, v in per.items()} for name, per in acc.items()}


def _above(thresholds: Sequence[ThresholdSection], name: str) -> bool:
    return next(t.above is not None for t in thresholds if t.name == name)


class Collector:
    """Reads one :class:`Snapshot` per call through a :class:`CentreReader`.

    Blocking (the reader is): the service calls :meth:`collect` in a thread. Keeps the
    last complete day's ``delivery`` rows between cycles (they change rarely).
    """

    def __init__(self, reader: CentreReader, cfg: AlertsSection,
                 sites: Sequence[str] = ()) -> None:
        self.reader = reader
        self.cfg = cfg
        self.sites = tuple(sites)
        self._day: tuple[int, int, tuple[DeliveryRow, ...]] | None = None  # day, read at, rows

    def collect(self, now_ms: int,
                known_updates: Mapping[str, tuple[str, str, int]] = {}) -> Snapshot:
        r, sites = self.reader, self.sites
        gateways = tuple(r.gateways(sites))
        devices = tuple(r.devices(sites))
        stations = tuple(r.stations(sites))
        latest = r.latest_reading_times(sites)
        day_ms, delivery = self._delivery(now_ms)
        stats: dict[str, dict[tuple[str, str], ThresholdStats]] = {}
        if self.cfg.threshold:
            longest = max(threshold_window_ms(t, self.cfg.interval_s) for t in self.cfg.threshold)
            quantities = sorted({t.quantity for t in self.cfg.threshold})
            stats = fold_readings(r.readings(now_ms - longest, now_ms + 1, sites,
                                             quantities=quantities),
                                  self.cfg.threshold, now_ms, self.cfg.interval_s)
        history = None
        unknown = unknown_update_sites(devices, known_updates)
        if unknown:
            history = tuple(r.device_points(now_ms - UPDATE_WINDOW_MS - UPDATE_MARGIN_MS,
                                            now_ms + 1, unknown))
        return Snapshot(now_ms, gateways, devices, stations, latest, day_ms, delivery, stats,
                        history)

    def _delivery(self, now_ms: int) -> tuple[int, tuple[DeliveryRow, ...]]:
        day_ms = now_ms // DAY_MS * DAY_MS - DAY_MS
        if self._day is None or self._day[0] != day_ms \
                or now_ms - self._day[1] > DELIVERY_REFRESH_S * 1000:
            self._day = (day_ms, now_ms,
                         tuple(self.reader.delivery(day_ms, day_ms + DAY_MS, self.sites)))
        return day_ms, self._day[2]


def failed_update(d: DevicePoint) -> tuple[str, str] | None:
    """(version, state) when the point reports a refused or rolled-back update."""
    state = d.strings.get("update_state", "")
    if state in FAILED_UPDATE_STATES:
        return d.strings.get("update_version", ""), state
    return None


def unknown_update_sites(devices: Iterable[DevicePoint],
                         known: Mapping[str, tuple[str, str, int]]) -> list[str]:
    """The sites of devices whose latest point shows a failed update the state has not
    dated yet (their history is read once, then the state remembers)."""
    sites = set()
    for d in devices:
        pair = failed_update(d)
        if pair is not None:
            k = known.get(device_ref(d.site, d.device))
            if k is None or (k[0], k[1]) != pair:
                sites.add(d.site)
    return sorted(sites)
