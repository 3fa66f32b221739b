"""Stores the forwarder writes to: InfluxDB v2 API, InfluxDB v1 API, embedded SQLite;
and their readers, one per store kind, next to the writers.

``make_store(cfg.store)`` picks one by ``kind``; each translates its client's
errors into StoreTransient / StoreRejected / StoreFatal (see ``base``).
``readers.make_centre_reader(cfg)`` gives the centre's reader (``centre``),
``make_reader`` the same reader for the exports' windows.
"""

from __future__ import annotations

from protocols.config import ExportSection, StoreSection

from .base import Store, StoreError, StoreFatal, StoreRejected, StoreTransient
from .reading import Reading, StoreReader, StoreUnreadable, read_chunks

__all__ = ["Reading", "Store", "StoreError", "StoreFatal", "StoreReader", "StoreRejected",
           "StoreTransient", "StoreUnreadable", "make_reader", "make_store", "read_chunks"]


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


def make_reader(cfg: StoreSection, export: ExportSection | None = None) -> StoreReader:
    """The exports' reader of the store ``cfg.kind`` names: the centre's readers, whose
    ``window`` serves the exports (see ``readers``)."""
    from .readers import make_reader as make

    return make(cfg, export)
