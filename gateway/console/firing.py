"""The firing alerts as Alertmanager holds them: active and not silenced.

``GET {alertmanager_url}/api/v2/alerts?active=true&silenced=false&inhibited=false``,
shaped as ``/api/alerts`` rows (interfaces, "City scope"). The console shows what
Alertmanager says rather than re-evaluating the rules: a silenced alert is then
silent here too, and the console and the pager agree.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Mapping
from typing import Any

__all__ = ["alert_row", "fetch_firing"]

_LABELS = ("site", "device", "gateway", "quantity")


def alert_row(doc: Mapping[str, Any]) -> dict[str, Any] | None:
    """One Alertmanager v2 alert -> ``{"alertname", "severity", "site", "device"?,
    "gateway"?, "quantity"?, "summary", "startsAt"}``; None when it has no name."""
    labels = doc.get("labels")
    if not isinstance(labels, Mapping) or not isinstance(labels.get("alertname"), str):
        return None
    notes = doc.get("annotations")
    notes = notes if isinstance(notes, Mapping) else {}
    row: dict[str, Any] = {"alertname": labels["alertname"],
                           "severity": str(labels.get("severity", "")),
                           "site": str(labels.get("site", ""))}
    for key in _LABELS[1:]:
        if isinstance(labels.get(key), str):
            row[key] = labels[key]
    row["summary"] = str(notes.get("summary", ""))
    row["startsAt"] = str(doc.get("startsAt", ""))
    return row


def fetch_firing(url: str, timeout: float = 3.0) -> list[dict[str, Any]]:
    """The active, unsilenced, uninhibited alerts, sorted by (site, alertname, device);
    OSError (unreachable, HTTP error) or ValueError (not the v2 JSON) otherwise."""
    q = "/api/v2/alerts?active=true&silenced=false&inhibited=false"
    req = urllib.request.Request(url.rstrip("/") + q, headers={"Accept": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 (config URL)
        doc = json.loads(resp.read(8 * 1024 * 1024))
    if not isinstance(doc, list):
        raise ValueError("Alertmanager answered something that is not an alert list")
    rows = [r for r in (alert_row(a) for a in doc if isinstance(a, Mapping)) if r is not None]
    return sorted(rows, key=lambda r: (r["site"], r["alertname"], r.get("device", ""),
                                       r.get("gateway", "")))
