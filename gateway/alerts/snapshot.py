"""One cycle's view of the store: a fixed handful of reader calls, whatever the fleet.

Every rule is a pure function of a :class:`Snapshot`, so the store is read once per
cycle here and nowhere else. The calls (each a bounded number of store queries by
the reader contract, :mod:`gateway.stores.centre`): the latest ``gateway``,
``device`` and ``station`` points, the latest reading time per device, the
``delivery`` points of the last complete UTC day (folded into a capture per device,
kept for the day and refreshed every :data:`DELIVERY_REFRESH_S`), the readings of
the thresholds' quantities over their longest ``for_s`` (folded into a few numbers
per device as they stream by), and the ``device`` history of the last hour only
when a device shows an update failure the state does not know yet.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from protocols.config import AlertsSection, ThresholdSection

from ..stores.centre import CentreReader, DeliveryRow, DevicePoint, GatewayPoint, StationPoint
from ..stores.reading import Reading
from .model import device_ref

__all__ = ["DAY_MS", "DELIVERY_CHUNKS", "DELIVERY_REFRESH_S", "FAILED_UPDATE_STATES",
           "HISTORY_CHUNKS", "UPDATE_WINDOW_MS", "Collector", "Snapshot", "ThresholdStats",
           "capture_of", "fold_delivery", "fold_readings", "threshold_window_ms"]

DAY_MS = 86_400_000
#: UpdateFailed fires for one hour from the first point with that (version, state).
UPDATE_WINDOW_MS = 3_600_000
#: How far before the hour the history looks, to tell "first seen" from "seen earlier".
UPDATE_MARGIN_MS = 600_000
FAILED_UPDATE_STATES = frozenset({"refused", "rolled_back"})
#: A corrected hour of yesterday may still arrive; re-read the day this often.
DELIVERY_REFRESH_S = 3600
#: The day's ``delivery`` points are read in this many windows.
DELIVERY_CHUNKS = 4
#: The update history (70 minutes of ``device`` points) is read in this many windows.
HISTORY_CHUNKS = 7


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
    #: start of the last complete UTC day, and each device's capture over it
    day_ms: int = 0
    capture: Mapping[tuple[str, str], float] = field(default_factory=dict)
    #: threshold name -> (site, device) -> stats over the threshold's window
    thresholds: Mapping[str, Mapping[tuple[str, str], ThresholdStats]] = field(
        default_factory=dict)
    #: (site, device) -> the oldest point in the last hour (+ margin) reporting the
    #: failed update its latest point reports; only for failures the state had not dated
    update_seen: Mapping[tuple[str, str], int] = field(default_factory=dict)


def threshold_window_ms(t: ThresholdSection, interval_s: float) -> int:
    """``for_s``, or one evaluation interval when ``for_s`` is 0 (the latest readings)."""
    return int((t.for_s if t.for_s > 0 else interval_s) * 1000)


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
        # day, read at, capture per device
        self._day: tuple[int, int, Mapping[tuple[str, str], float]] | None = None

    def collect(self, now_ms: int,
                known_updates: Mapping[str, tuple[str, str, int]] = {}) -> Snapshot:
        r, sites = self.reader, self.sites
        gateways = tuple(r.gateways(sites))
        devices = tuple(r.devices(sites))
        stations = tuple(r.stations(sites))
        latest = r.latest_reading_times(sites)
        day_ms, capture = self._capture(now_ms)
        stats: dict[str, dict[tuple[str, str], ThresholdStats]] = {}
        if self.cfg.threshold:
            longest = max(threshold_window_ms(t, self.cfg.interval_s) for t in self.cfg.threshold)
            quantities = sorted({t.quantity for t in self.cfg.threshold})
            stats = fold_readings(r.readings(now_ms - longest, now_ms + 1, sites,
                                             quantities=quantities),
                                  self.cfg.threshold, now_ms, self.cfg.interval_s)
        seen = self._update_seen(now_ms, devices, known_updates)
        return Snapshot(now_ms, gateways, devices, stations, latest, day_ms, capture, stats,
                        seen)

    def _update_seen(self, now_ms: int, devices: Sequence[DevicePoint],
                     known: Mapping[str, tuple[str, str, int]]) -> dict[tuple[str, str], int]:
        """Date the failed updates the state does not know: the last hour (+ margin) of
        ``device`` points of their sites, in :data:`HISTORY_CHUNKS` windows folded as
        they come (a fixed number of calls; memory of one window)."""
        wanted = unknown_updates(devices, known)
        if not wanted:
            return {}
        sites = sorted({site for site, _ in wanted})
        seen: dict[tuple[str, str], int] = {}
        since = now_ms - UPDATE_WINDOW_MS - UPDATE_MARGIN_MS
        step = -(-(now_ms + 1 - since) // HISTORY_CHUNKS)
        for start in range(since, now_ms + 1, step):
            for p in self.reader.device_points(start, min(start + step, now_ms + 1), sites):
                key = (p.site, p.device)
                if key in wanted and failed_update(p) == wanted[key]:
                    seen[key] = min(seen.get(key, p.time_ms), p.time_ms)
        return seen

    def _capture(self, now_ms: int) -> tuple[int, Mapping[tuple[str, str], float]]:
        """The last complete day's capture per device, read in :data:`DELIVERY_CHUNKS`
        windows (a fixed number of calls; memory bounded by a quarter of the day's rows)
        and kept for :data:`DELIVERY_REFRESH_S`."""
        day_ms = now_ms // DAY_MS * DAY_MS - DAY_MS
        if self._day is None or self._day[0] != day_ms \
                or now_ms - self._day[1] > DELIVERY_REFRESH_S * 1000:
            sums: dict[tuple[str, str], list[int]] = {}
            step = DAY_MS // DELIVERY_CHUNKS
            for start in range(day_ms, day_ms + DAY_MS, step):
                fold_delivery(self.reader.delivery(start, start + step, self.sites), sums)
            self._day = (day_ms, now_ms, capture_of(sums))
        return day_ms, self._day[2]


def fold_delivery(rows: Iterable[DeliveryRow], sums: dict[tuple[str, str], list[int]]) -> None:
    """Add each row's accepted and (accepted + rejected + missing) to its device's sums."""
    for r in rows:
        s = sums.setdefault((r.site, r.device), [0, 0])
        s[0] += r.accepted
        s[1] += r.accepted + r.rejected + r.missing


def capture_of(sums: Mapping[tuple[str, str], list[int]]) -> dict[tuple[str, str], float]:
    """(site, device) -> accepted / (accepted + rejected + missing); devices whose counts
    are all 0 are absent (a day with no counts never fires)."""
    return {k: a / n for k, (a, n) in sums.items() if n > 0}


def failed_update(d: DevicePoint) -> tuple[str, str] | None:
    """(version, state) when the point reports a refused or rolled-back update."""
    state = d.strings.get("update_state", "")
    if state in FAILED_UPDATE_STATES:
        return d.strings.get("update_version", ""), state
    return None


def unknown_updates(devices: Iterable[DevicePoint], known: Mapping[str, tuple[str, str, int]]
                    ) -> dict[tuple[str, str], tuple[str, str]]:
    """(site, device) -> (version, state) of latest points showing a failed update the
    state has not dated yet (their history is read once, then the state remembers)."""
    out = {}
    for d in devices:
        pair = failed_update(d)
        if pair is not None:
            k = known.get(device_ref(d.site, d.device))
            if k is None or (k[0], k[1]) != pair:
                out[(d.site, d.device)] = pair
    return out
