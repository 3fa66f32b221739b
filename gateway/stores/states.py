"""The derived states of the centre: one pure function of what the reader returns.

Wire contract, "Derived states (centre)": the first rule that matches gives a
device's state, in this order: ``retired``, ``unknown`` (its site's gateway is
down), ``offline`` (its last will), ``online``, ``delayed`` (the gateway's
backlog may still hold its readings), ``silent``, ``never-seen``. The city
console, ``livinglab alerts`` and SensorThings all call :func:`device_states`,
so the three never disagree about a device.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from .centre import DevicePoint, GatewayPoint, StationPoint

__all__ = ["DEFAULT_INTERVAL_S", "DEVICE_STATES", "DeviceState", "GatewayState",
           "SiteGateways", "device_states", "gateway_down", "gateway_state", "site_gateways"]

DeviceState = Literal["online", "delayed", "silent", "offline", "never-seen", "retired",
                      "unknown"]
GatewayState = Literal["online", "down"]
#: Every device state, in the order of the rules (and of the console's columns).
DEVICE_STATES: tuple[DeviceState, ...] = ("retired", "unknown", "offline", "online", "delayed",
                                          "silent", "never-seen")
#: A device's interval when no ``device`` point gave one.
DEFAULT_INTERVAL_S = 60.0


def gateway_down(g: GatewayPoint, now_ms: int) -> bool:
    """No ``gateway`` point for 3 x its ``interval_s``, or its latest says ``up`` = 0."""
    if g.up == 0.0:
        return True
    return now_ms - g.time_ms > 3 * g.interval_s * 1000


def gateway_state(g: GatewayPoint, now_ms: int) -> GatewayState:
    return "down" if gateway_down(g, now_ms) else "online"


@dataclass(frozen=True)
class SiteGateways:
    """A site's gateways summed up for the device rules."""

    down: bool
    #: the longest backlog an up gateway of the site reports (s)
    backlog_s: float


def site_gateways(gateways: Iterable[GatewayPoint], now_ms: int) -> dict[str, SiteGateways]:
    """site -> down (all its gateways down) and backlog. A site with no gateway point
    at all is absent: the caller decides (the contract's rule 2 needs a gateway)."""
    by_site: dict[str, list[GatewayPoint]] = {}
    for g in gateways:
        by_site.setdefault(g.site, []).append(g)
    out: dict[str, SiteGateways] = {}
    for site, gs in by_site.items():
        up = [g for g in gs if not gateway_down(g, now_ms)]
        out[site] = SiteGateways(down=not up,
                                 backlog_s=max((g.buffer_oldest_s for g in up), default=0.0))
    return out


def device_states(now_ms: int, *, gateways: Iterable[GatewayPoint],
                  devices: Iterable[DevicePoint], stations: Iterable[StationPoint],
                  latest_reading: Mapping[tuple[str, str], int]
                  ) -> dict[tuple[str, str], DeviceState]:
    """(site, device) -> its derived state, for every device any input names."""
    sites = site_gateways(gateways, now_ms)
    dev = {(d.site, d.device): d for d in devices}
    sta = {(s.site, s.device): s for s in stations}
    keys = set(dev) | set(sta) | set(latest_reading)
    out: dict[tuple[str, str], DeviceState] = {}
    for key in keys:
        out[key] = _state(now_ms, sites.get(key[0]), dev.get(key), sta.get(key),
                          latest_reading.get(key))
    return out


def _state(now_ms: int, site: SiteGateways | None, d: DevicePoint | None,
           s: StationPoint | None, reading_ms: int | None) -> DeviceState:
    if s is not None and s.retired:
        return "retired"
    if site is not None and site.down:
        return "unknown"
    if d is not None and d.online == 0.0:
        return "offline"
    interval_s = DEFAULT_INTERVAL_S
    if d is not None and d.fields.get("interval_s", 0.0) > 0:
        interval_s = d.fields["interval_s"]
    window_ms = 3 * interval_s * 1000
    if reading_ms is not None and now_ms - reading_ms <= window_ms:
        return "online"
    if d is not None and d.online == 1.0 and "uptime" in d.fields:
        # just booted: uptime < 3 x interval, and that boot is itself no older than
        # 3 x interval now (a status from a board that then died is not "online")
        booted_ms = d.time_ms - d.fields["uptime"] * 1000
        if d.fields["uptime"] < 3 * interval_s and now_ms - booted_ms <= window_ms:
            return "online"
    if site is not None and site.backlog_s > 3 * interval_s:
        return "delayed"
    if d is not None or reading_ms is not None:
        return "silent"
    return "never-seen"
