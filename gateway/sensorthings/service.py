"""One request, start to end, off the event loop: resolve, apply options, render.

Blocking (the reader is), so the web layer runs :meth:`Service.get` in a thread;
a lock serialises store access, because a reader's connection is not promised to
be shareable between threads, and a page is bounded (at most 1,000 entities).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from protocols.quantities import Registry

from ..stores.centre import CentreReader
from . import ids
from .errors import ApiError
from .graph import Ent, GraphCache
from .observations import Extents
from .options import parse_options
from .render import Renderer
from .resolve import Collection, Property, resolve

__all__ = ["CONFORMANCE", "Service"]

_REQ = "http://www.opengis.net/spec/iot_sensing/1.1/req/"
#: the requirement classes served (docs/sensorthings.md says how each is tested)
CONFORMANCE = [_REQ + "datamodel", _REQ + "resource-path/resource-path-to-entities",
               _REQ + "request-data"]


class Service:
    def __init__(self, reader: CentreReader, registry: Registry, base_url: str = "",
                 graph_ttl_s: float = 10.0) -> None:
        self.reader = reader
        self.graphs = GraphCache(reader, registry, graph_ttl_s)
        self.extents = Extents(reader)
        self.base_url = base_url.rstrip("/")
        self._lock = threading.Lock()

    def warm(self) -> threading.Thread:
        """Find where every Datastream starts, in the background (two ``series`` calls
        each), so the first open-ended query over all Observations does not pay for it:
        the reader's contract has no "first reading" question."""
        def run() -> None:
            try:
                graph = self.graphs.get()
                for dsid in list(graph.datastreams):
                    self.extents.first(graph, dsid)
            except Exception:  # noqa: BLE001 - a request will find the store's error itself
                return
        t = threading.Thread(target=run, name="sensorthings-warm", daemon=True)
        t.start()
        return t

    def base(self, request_root: str) -> str:
        """``[sensorthings] base_url`` + ``/v1.1`` when set, else the request's own."""
        return (self.base_url or request_root.rstrip("/")) + "/v1.1"

    def root(self, base: str) -> dict[str, Any]:
        return {"value": [{"name": s, "url": f"{base}/{s}"} for s in ids.ENTITY_SETS],
                "serverSettings": {"conformance": CONFORMANCE}}

    def get(self, path: str, params: Mapping[str, str], base: str) -> tuple[int, Any]:
        """(status, body): a dict for JSON, a str for ``$value``."""
        try:
            opts = parse_options(params)
            with self._lock:
                graph = self.graphs.get()
                r = Renderer(base, self.reader, graph, self.extents)
                target = resolve(self.reader, graph, path)
                if isinstance(target, Collection):
                    return 200, r.collection(target, opts)
                if isinstance(target, Property):
                    v = r.property(target.ent, target.name, target.raw)
                    return 200, v if target.raw else {target.name: v}
                assert isinstance(target, Ent)
                return 200, r.entity(target, opts)
        except ApiError as exc:
            return exc.status, {"code": exc.status, "type": "error", "message": exc.message}
