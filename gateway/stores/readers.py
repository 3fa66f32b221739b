"""Which reader reads the configured store: the one place that decides.

``make_centre_reader(cfg)`` for the centre (city console, alerts, SensorThings,
reports across sites), ``make_reader(store, export)`` for the exports' windows:
both give the same classes, one per store kind (``sqlite_reader``,
``influxdb1_reader``, ``vm_reader`` / ``flux_reader`` for ``influxdb2``).

The flavour of an ``influxdb2`` store is decided one way only: ``[store]
flavour`` when it says ``influxdb`` or ``victoriametrics``; on ``auto``,
:func:`detect_flavour` asks ``/health`` once (VictoriaMetrics answers the text
``OK``, InfluxDB a JSON document), trying ``read_urls`` in order.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from protocols.config import Config, ExportSection, StoreSection

from .http_read import HttpReads, StoreRefused
from .reading import StoreReader

if TYPE_CHECKING:
    from .centre import CentreReader

__all__ = ["Flavour", "detect_flavour", "flavour_of", "make_centre_reader", "make_reader"]

Flavour = Literal["influxdb", "victoriametrics"]
_DEFAULT_LOOKBACK_S = 30 * 86400


def detect_flavour(store: StoreSection) -> Flavour:
    """Ask ``/health`` of the first read URL that answers (StoreUnreadable if none)."""
    http = HttpReads(store.reader_urls, min(store.timeout_s, 10.0), "store",
                     ca_file=store.ca_file)
    try:
        body = http.get("/health")
    except StoreRefused:  # VictoriaMetrics always has /health: this is an InfluxDB
        return "influxdb"
    return "victoriametrics" if body.strip() == b"OK" else "influxdb"


def flavour_of(store: StoreSection, override: str = "auto") -> Flavour:
    """``override`` (the older ``[export] influxdb2_reader``) when set, then ``[store]
    flavour``, then the probe."""
    if override == "victoriametrics" or override == "flux":
        return "victoriametrics" if override == "victoriametrics" else "influxdb"
    if store.flavour != "auto":
        return store.flavour
    return detect_flavour(store)


def _build(store: StoreSection, lookback_s: int, chunk_s: int, domains: tuple[str, ...],
           override: str = "auto") -> CentreReader:
    if store.kind == "sqlite":
        from .sqlite_reader import SQLiteReader

        return SQLiteReader(store, lookback_s, chunk_s)
    if store.kind == "influxdb1":
        from .influxdb1_reader import InfluxDB1Reader

        return InfluxDB1Reader(store, lookback_s, chunk_s)
    if flavour_of(store, override) == "victoriametrics":
        from .influxdb2_reader import VictoriaMetricsReader

        return VictoriaMetricsReader(store, lookback_s, chunk_s, domains)
    from .flux_reader import FluxReader

    return FluxReader(store, lookback_s, chunk_s)


def make_centre_reader(cfg: Config) -> CentreReader:
    """The centre's reader of ``cfg.store`` (``[console] lookback_s`` for "latest",
    ``[export] chunk_s`` for streaming). An ``auto`` flavour is probed here, once:
    StoreUnreadable when no read URL answers."""
    return _build(cfg.store, cfg.console.lookback_s, cfg.export.chunk_s, cfg.registry.domains)


def make_reader(store: StoreSection, export: ExportSection | None = None) -> StoreReader:
    """The exports' reader (``window``): the same classes as :func:`make_centre_reader`."""
    from protocols import DOMAINS

    reader: StoreReader = _build(store, _DEFAULT_LOOKBACK_S,  # type: ignore[assignment]
                                 export.chunk_s if export else 3600, tuple(DOMAINS),
                                 export.influxdb2_reader if export else "auto")
    return reader
