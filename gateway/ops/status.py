"""The gateway's own retained status message on ``{site}/_gateway/{gateway}/status``.

``online`` with its counters when it connects and every ``REFRESH_S`` seconds;
the broker publishes the last will (``offline``) if the gateway vanishes, and
the gateway publishes ``offline`` itself on a clean stop. Payloads follow the
contract's :class:`protocols.models.GatewayStatus` field for field (its order,
``null`` left out, compact JSON as its ``model_dump_json``); they are built as
plain JSON because importing the pydantic models would cost the gateway's start
more than everything else it imports (issue 21); ``tests/gateway/test_app_health``
validates them against the model.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from importlib import metadata
from typing import Any

REFRESH_S = 10.0

__all__ = ["REFRESH_S", "GatewayHealth", "offline_payload", "online_payload"]


def _version() -> str | None:
    try:
        return metadata.version("livinglab")
    except metadata.PackageNotFoundError:
        return None


@dataclass(frozen=True, slots=True)
class GatewayHealth:
    """What the status message reports; gathered by the app from its parts."""

    gateway: str
    site: str
    started_at: float
    received: int
    accepted: int
    rejected: int
    duplicates: int
    forwarded: int
    buffer_depth: int
    buffer_full: bool = False
    disk_full: bool = False


def online_payload(h: GatewayHealth, now: float | None = None) -> bytes:
    """The retained ``online`` payload (JSON)."""
    return _dump({
        "state": "online", "gateway": h.gateway, "site": h.site, "version": _version(),
        "started_at": float(h.started_at), "ts": float(time.time() if now is None else now),
        "received": int(h.received), "accepted": int(h.accepted),
        "rejected": int(h.rejected), "duplicates": int(h.duplicates),
        "forwarded": int(h.forwarded), "buffer_depth": int(h.buffer_depth),
        "buffer_full": bool(h.buffer_full), "disk_full": bool(h.disk_full)})


def offline_payload(gateway: str, site: str) -> bytes:
    """The last will and the clean-stop message: only state, gateway and site."""
    return _dump({"state": "offline", "gateway": gateway, "site": site})


def _dump(doc: dict[str, Any]) -> bytes:
    """``model_dump_json(exclude_none=True)``: no nulls, no spaces, UTF-8."""
    return json.dumps({k: v for k, v in doc.items() if v is not None}, separators=(",", ":"),
                      ensure_ascii=False, allow_nan=False).encode()
