"""The built-in rules: pure functions from a :class:`Snapshot` to the alerts firing now.

interfaces.md, "Alerts": ``DeviceSilent``, ``DeviceOffline``, ``GatewayDown``,
``BufferBacklog``, ``DiskLow``, ``UpdateFailed``, ``CaptureLow``. Device states
come from :func:`gateway.stores.states.device_states`, the same function the city
console uses, so an alert never disagrees with the page. What never fires: an
alert naming a retired device, or (except ``GatewayDown``) naming a device of a
site whose gateway is down (its state is then ``unknown``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from protocols.config import AlertsSection

from ..stores.centre import DevicePoint, GatewayPoint
from ..stores.states import DeviceState, device_states, gateway_down
from .model import Alert, Memory, device_ref
from .snapshot import DAY_MS, UPDATE_WINDOW_MS, Snapshot, failed_update
from .thresholds import threshold_alerts

__all__ = ["CAPTURE_MIN", "RULES", "Evaluation", "evaluate"]

#: CaptureLow fires below this capture over the last complete UTC day.
CAPTURE_MIN = 0.75
#: Every built-in alertname, in docs/alerts.md order.
RULES = ("DeviceSilent", "DeviceOffline", "GatewayDown", "BufferBacklog", "DiskLow",
         "UpdateFailed", "CaptureLow")
#: States whose devices no alert names (retired; unknown = the site's gateway is down).
MUTED: frozenset[DeviceState] = frozenset({"retired", "unknown"})


@dataclass(frozen=True)
class Evaluation:
    alerts: tuple[Alert, ...]
    memory: Memory
    states: Mapping[tuple[str, str], DeviceState]


def evaluate(snap: Snapshot, cfg: AlertsSection, memory: Memory | None = None,
             active: frozenset[str] = frozenset()) -> Evaluation:
    """Every alert firing at ``snap.now_ms``: the built-ins, then the thresholds.

    ``active``: keys of the alerts firing after the previous cycle (thresholds
    resolve with a hysteresis, so they need to know)."""
    memory = memory or Memory()
    now = snap.now_ms
    states = device_states(now, gateways=snap.gateways, devices=snap.devices,
                           stations=snap.stations, latest_reading=snap.latest_reading)
    audible = {k for k, s in states.items() if s not in MUTED}
    out: list[Alert] = []
    out += gateway_alerts(snap.gateways, now, cfg)
    out += silent_alerts(snap, states)
    offline, offline_since = offline_alerts(snap.devices, states, now, cfg, memory.offline_since)
    out += offline
    updates, update_first = update_alerts(snap, audible, memory.update_first)
    out += updates
    out += capture_alerts(snap.capture, snap.day_ms, audible)
    out += threshold_alerts(snap.thresholds, cfg.threshold, audible, active)
    return Evaluation(tuple(out), Memory(offline_since, update_first), states)


def _gw(g: GatewayPoint, name: str, severity: str) -> dict[str, str]:
    return {"alertname": name, "severity": severity, "site": g.site, "gateway": g.gateway}


def _dev(site: str, device: str, name: str) -> dict[str, str]:
    return {"alertname": name, "severity": "warning", "site": site, "device": device}


def gateway_alerts(gateways: Iterable[GatewayPoint], now_ms: int,
                   cfg: AlertsSection) -> list[Alert]:
    """GatewayDown for each gateway down; BufferBacklog and DiskLow from an up one's latest
    point (a down gateway's last numbers are stale: GatewayDown says enough)."""
    out = []
    for g in gateways:
        if gateway_down(g, now_ms):
            since = g.time_ms if g.up == 0.0 else int(g.time_ms + 3 * g.interval_s * 1000)
            why = "shut down" if g.up == 0.0 else \
                f"has written no health point for {(now_ms - g.time_ms) / 1000:.0f} s"
            out.append(Alert(_gw(g, "GatewayDown", "critical"),
                             f"Gateway {g.gateway} of site {g.site} {why}: the site's readings "
                             "are not reaching the store.", since))
            continue
        if g.buffer_oldest_s > cfg.backlog_s:
            out.append(Alert(_gw(g, "BufferBacklog", "warning"),
                             f"Gateway {g.gateway} of site {g.site} holds "
                             f"{g.buffer_points:.0f} points, the oldest "
                             f"{g.buffer_oldest_s:.0f} s old: the store is not taking them."))
        if g.disk_free_bytes < cfg.disk_low_bytes:
            out.append(Alert(_gw(g, "DiskLow", "critical"),
                             f"Gateway {g.gateway} of site {g.site} has "
                             f"{g.disk_free_bytes / 1e6:.0f} MB free on its data disk: it will "
                             "stop accepting readings when the disk is full."))
    return out


def _interval_s(d: DevicePoint | None) -> float:
    if d is not None and d.fields.get("interval_s", 0.0) > 0:
        return d.fields["interval_s"]
    return 60.0


def silent_alerts(snap: Snapshot, states: Mapping[tuple[str, str], DeviceState]) -> list[Alert]:
    """DeviceSilent for ``silent`` devices only (not delayed, unknown, retired)."""
    dev = {(d.site, d.device): d for d in snap.devices}
    out = []
    for (site, device), state in states.items():
        if state != "silent":
            continue
        d = dev.get((site, device))
        last = max(snap.latest_reading.get((site, device), 0), d.time_ms if d else 0)
        since = int(last + 3 * _interval_s(d) * 1000)
        out.append(Alert(_dev(site, device, "DeviceSilent"),
                         f"Device {device} of site {site} has sent nothing for "
                         f"{(snap.now_ms - last) / 1000:.0f} s (its interval is "
                         f"{_interval_s(d):.0f} s) although its gateway is up.", since))
    return out


def offline_alerts(devices: Iterable[DevicePoint], states: Mapping[tuple[str, str], DeviceState],
                   now_ms: int, cfg: AlertsSection, known: Mapping[str, int]
                   ) -> tuple[list[Alert], dict[str, int]]:
    """DeviceOffline once a device's latest point has said offline for ``offline_for_s``;
    the run's start is remembered so a repeated offline point does not restart it."""
    out, since_map = [], {}
    for d in devices:
        if d.online != 0.0:
            continue
        ref = device_ref(d.site, d.device)
        since = min(known.get(ref, d.time_ms), d.time_ms)
        since_map[ref] = since
        if states.get((d.site, d.device)) != "offline":
            continue
        if now_ms - since > cfg.offline_for_s * 1000:
            out.append(Alert(_dev(d.site, d.device, "DeviceOffline"),
                             f"Device {d.device} of site {d.site} has been offline for "
                             f"{(now_ms - since) / 1000:.0f} s (its last will): no power, "
                             "no Wi-Fi or a crash loop.", int(since + cfg.offline_for_s * 1000)))
    return out, since_map


def update_first_seen(latest: DevicePoint, pair: tuple[str, str],
                      seen: Mapping[tuple[str, str], int],
                      known: tuple[str, str, int] | None) -> int:
    """When the device first reported ``pair``: the state's date if it has one for this
    pair, else the oldest point with it in the last hour's history, else the latest."""
    if known is not None and (known[0], known[1]) == pair:
        return known[2]
    return min(seen.get((latest.site, latest.device), latest.time_ms), latest.time_ms)


def update_alerts(snap: Snapshot, audible: set[tuple[str, str]],
                  known: Mapping[str, tuple[str, str, int]]
                  ) -> tuple[list[Alert], dict[str, tuple[str, str, int]]]:
    """UpdateFailed for one hour from the first point with that (version, state)."""
    out, first_map = [], {}
    for d in snap.devices:
        pair = failed_update(d)
        if pair is None:
            continue
        ref = device_ref(d.site, d.device)
        first = update_first_seen(d, pair, snap.update_seen, known.get(ref))
        first_map[ref] = (pair[0], pair[1], first)
        if (d.site, d.device) not in audible or snap.now_ms - first >= UPDATE_WINDOW_MS:
            continue
        reason = d.strings.get("update_reason", "")
        what = "refused" if pair[1] == "refused" else "rolled back"
        out.append(Alert(_dev(d.site, d.device, "UpdateFailed"),
                         f"Device {d.device} of site {d.site} {what} update {pair[0]}"
                         + (f": {reason}" if reason else "") + ".", first))
    return out, first_map


def capture_alerts(capture: Mapping[tuple[str, str], float], day_ms: int,
                   audible: set[tuple[str, str]]) -> list[Alert]:
    """CaptureLow when the last complete UTC day's capture is below :data:`CAPTURE_MIN`."""
    out = []
    for (site, device), c in sorted(capture.items()):
        if c < CAPTURE_MIN and (site, device) in audible:
            out.append(Alert(_dev(site, device, "CaptureLow"),
                             f"Device {device} of site {site} delivered {c:.0%} of its messages "
                             "over the last complete UTC day (below 75%).", day_ms + DAY_MS))
    return out
