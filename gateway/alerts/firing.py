"""The firing alerts as the console shows them (``/api/alerts``, the ``/alerts`` page).

Read from Alertmanager, not from our state: silences and inhibitions live there,
and what a technician sees must be what would page them. Rows as interfaces.md
says: ``{"alertname", "severity", "site", "device"?, "gateway"?, "quantity"?,
"summary", "startsAt"}``, sorted by site, then name, then device/gateway. No URL
configured: no alerts (an empty list), never an error.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .client import TIMEOUT_S, get_alerts

__all__ = ["alert_row", "firing_alerts"]

_OPTIONAL = ("device", "gateway", "quantity")


def alert_row(a: Mapping[str, Any]) -> dict[str, str] | None:
    """One ``/api/alerts`` row from an Alertmanager v2 alert; None without an alertname."""
    labels = a.get("labels") or {}
    ann = a.get("annotations") or {}
    if not isinstance(labels, Mapping) or "alertname" not in labels:
        return None
    row = {"alertname": str(labels["alertname"]), "severity": str(labels.get("severity", "")),
           "site": str(labels.get("site", ""))}
    for k in _OPTIONAL:
        if k in labels:
            row[k] = str(labels[k])
    row["summary"] = str(ann.get("summary", "")) if isinstance(ann, Mapping) else ""
    row["startsAt"] = str(a.get("startsAt", ""))
    return row


def firing_alerts(alertmanager_url: str, timeout: float = TIMEOUT_S) -> list[dict[str, str]]:
    """The active, unsilenced, uninhibited alerts; ``[]`` when no URL is set.

    Blocking (call it through ``asyncio.to_thread`` from async code); raises
    :class:`~gateway.alerts.errors.AlertmanagerUnreachable` when Alertmanager does not
    answer, so a page can say so rather than show "no alerts"."""
    if not alertmanager_url:
        return []
    raw = get_alerts(alertmanager_url, {"active": "true", "silenced": "false",
                                        "inhibited": "false"}, timeout)
    rows = [r for r in (alert_row(a) for a in raw) if r is not None]
    rows.sort(key=lambda r: (r["site"], r["alertname"], r.get("device", ""),
                             r.get("gateway", ""), r.get("quantity", "")))
    return rows
