"""The gateway's health as points in the shared store (wire contract, "Gateway health").

One ``gateway`` point (and its ``gateway_info`` companion carrying ``version``) at
start, every ``[gateway] store_health_s`` seconds and with ``up`` = 0.0 on a clean
shutdown. They go through the buffer's priority lines, ahead of any backlog, so the
centre learns at once that a site is up and how far behind it is; a centre that
has had none for 3 x ``interval_s`` calls the gateway down (a kill -9 just stops
them). Building the point is pure; the app gathers the numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata

from protocols.lineprotocol import Point, clean_string, make_point, with_info

__all__ = ["GatewaySample", "gateway_points", "package_version"]


def package_version() -> str:
    """The installed livinglab version, ``unknown`` when run from a bare checkout."""
    try:
        return metadata.version("livinglab")
    except metadata.PackageNotFoundError:
        return "unknown"


@dataclass(frozen=True, slots=True)
class GatewaySample:
    """What one ``gateway`` point says; gathered by the app from its parts."""

    site: str
    gateway: str
    at: float
    up: bool
    broker_connected: bool
    buffer_points: int
    buffer_oldest_s: float
    disk_free_bytes: int
    devices_online: int
    uptime_s: float
    interval_s: float
    version: str


def gateway_points(s: GatewaySample) -> tuple[Point, ...]:
    """The ``gateway`` point at ``s.at`` (ms) and its ``gateway_info`` companion."""
    fields: dict[str, float | str] = {
        "up": 1.0 if s.up else 0.0,
        "broker_connected": 1.0 if s.broker_connected else 0.0,
        "buffer_points": float(s.buffer_points),
        "buffer_oldest_s": round(max(s.buffer_oldest_s, 0.0), 3) if s.buffer_points else 0.0,
        "disk_free_bytes": float(s.disk_free_bytes),
        "devices_online": float(s.devices_online),
        "uptime_s": round(max(s.uptime_s, 0.0), 3),
        "interval_s": float(s.interval_s),
        "version": clean_string(s.version) or "unknown",
    }
    return with_info(make_point("gateway", {"site": s.site, "gateway": s.gateway}, fields,
                                round(s.at * 1000.0)))
