"""The gateway's own retained status message on ``{site}/_gateway/{gateway}/status``.

``online`` with its counters when it connects and every ``REFRESH_S`` seconds;
the broker publishes the last will (``offline``) if the gateway vanishes, and
the gateway publishes ``offline`` itself on a clean stop. Payloads are built
through the contract's :class:`protocols.models.GatewayStatus`, so they always
match the published schema.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from importlib import metadata

from protocols.models import GatewayStatus

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
    model = GatewayStatus(
        state="online", gateway=h.gateway, site=h.site, version=_version(),
        started_at=float(h.started_at), ts=float(time.time() if now is None else now),
        received=h.received, accepted=h.accepted, rejected=h.rejected,
        duplicates=h.duplicates, forwarded=h.forwarded, buffer_depth=h.buffer_depth,
        buffer_full=h.buffer_full, disk_full=h.disk_full)
    return model.model_dump_json(exclude_none=True).encode()


def offline_payload(gateway: str, site: str) -> bytes:
    """The last will and the clean-stop message: only state, gateway and site."""
    return GatewayStatus(state="offline", gateway=gateway, site=site).model_dump_json(
        exclude_none=True).encode()
