"""``[[alerts.threshold]]``: alerts on readings, with a duration and a hysteresis.

interfaces.md: a threshold fires when *every* reading of the device in the last
``for_s`` is beyond the line (and there is at least one), all of the device's
sensors of that quantity pooled. Once firing it resolves only when the latest
reading is back by ``hysteresis`` (``<= above - hysteresis``, or ``>= below +
hysteresis``), or when the device has sent no reading in the last ``for_s``. So a
value wandering around the line fires once and stays put: no flapping.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from protocols.config import ThresholdSection

from .model import Alert, alert_key
from .snapshot import ThresholdStats

__all__ = ["crossed", "holds", "threshold_alerts", "threshold_labels"]


def threshold_labels(t: ThresholdSection, site: str, device: str) -> dict[str, str]:
    return {"alertname": t.name, "severity": t.severity, "site": site, "device": device,
            "quantity": t.quantity}


def crossed(t: ThresholdSection, s: ThresholdStats) -> bool:
    """Fires: at least one reading in the window and every one beyond the line."""
    if s.n == 0:
        return False
    if t.above is not None:
        return s.low > t.above
    assert t.below is not None
    return s.high < t.below


def holds(t: ThresholdSection, s: ThresholdStats) -> bool:
    """Keeps firing: the latest reading is not yet back by the hysteresis."""
    if s.n == 0:
        return False
    if t.above is not None:
        return s.latest > t.above - t.hysteresis
    assert t.below is not None
    return s.latest < t.below + t.hysteresis


def _summary(t: ThresholdSection, site: str, device: str, s: ThresholdStats) -> str:
    line = f"above {t.above:g}" if t.above is not None else f"below {t.below:g}"
    return (f"Device {device} of site {site} reads {t.quantity} {s.latest:g}, {line} "
            f"for at least {t.for_s:.0f} s.")


def threshold_alerts(stats: Mapping[str, Mapping[tuple[str, str], ThresholdStats]],
                     thresholds: Sequence[ThresholdSection], audible: Iterable[tuple[str, str]],
                     active: frozenset[str]) -> list[Alert]:
    """The threshold alerts firing now; ``active`` holds the keys firing before."""
    ok = set(audible)
    out = []
    for t in thresholds:
        for (site, device), s in sorted(stats.get(t.name, {}).items()):
            if (site, device) not in ok:
                continue
            labels = threshold_labels(t, site, device)
            firing = holds(t, s) if alert_key(labels) in active else crossed(t, s)
            if firing:
                out.append(Alert(labels, _summary(t, site, device, s)))
    return out
