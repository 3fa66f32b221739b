"""Stores the forwarder writes to: InfluxDB v2 API, InfluxDB v1 API, embedded SQLite.

``make_store(cfg.store)`` picks one by ``kind``; each translates its client's
errors into StoreTransient / StoreRejected / StoreFatal (see ``base``).
"""

from __future__ import annotations

from ..config import StoreSection
from .base import Store, StoreError, StoreFatal, StoreRejected, StoreTransient

__all__ = ["Store", "StoreError", "StoreFatal", "StoreRejected", "StoreTransient", "make_store"]


def make_store(cfg: StoreSection) -> Store:
    """The store ``cfg.kind`` names; clients are imported only when chosen."""
    if cfg.kind == "influxdb2":
        from .influxdb2 import InfluxDB2Store

        return InfluxDB2Store(cfg)
    if cfg.kind == "influxdb1":
        from .influxdb1 import InfluxDB1Store

        return InfluxDB1Store(cfg)
    from .sqlite import SQLiteStore

    return SQLiteStore(cfg)
