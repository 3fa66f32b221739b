"""Observations: streamed from the reader in time windows, in order, after a cursor.

A query is narrowed to a time range and a set of Datastreams (the navigation it
came through, intersected with :func:`.filters.window`), read with the
reader's own filters (sites, devices, domains, quantities) window by window,
and decided exactly by the ``$filter`` in Python. Memory is what one reader
window holds plus one page; a window grows 4x while it finds little, so a sparse
series costs few queries and a dense one never loads more than it pages.

Orders: ``phenomenonTime`` / ``resultTime`` (the same instant here), ascending
by walking forward; descending by walking backward window by window, keeping
only the newest rows of each window (a bounded deque). ``id``: Datastream by
Datastream, each in time order. Ties are broken by the Datastream's tag values,
so the order is total and a cursor (the last row's key) resumes exactly.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from odata_query import ast

from ..stores.centre import CentreReader
from ..stores.reading import Reading
from . import ids
from .errors import bad_request
from .filters import evaluate, path_of, residual, window
from .graph import Ent, Graph
from .options import Options

__all__ = ["Extents", "ObsPlan", "Order", "observation", "order_of", "plan", "stream"]

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
MAX_WINDOW_MS = 32 * DAY_MS
#: readings stamped up to this far ahead of the clock are still served
FUTURE_MS = DAY_MS
#: readings older than this (2000-01-01) are not looked for
SEARCH_FROM_MS = 946_684_800_000
#: the most rows a backward walk holds at once (a page of the largest $top, and one)
MAX_BUFFER = 1001
#: a walk over a window wider than this is first bounded by the data's extent
WIDE_MS = 7 * DAY_MS
#: how long the found end of a series quiet for longer than the lookback is kept
STALE_TTL_S = 300.0
Key = tuple[int, str, str, str, str]


@dataclass(frozen=True)
class Order:
    by_id: bool = False
    desc: bool = False


def order_of(opts: Options) -> Order:
    """``$orderby`` of Observations: phenomenonTime, resultTime or id (else 400); the
    first item decides, later ones are tie-breaks the order already has."""
    if not opts.orderby:
        return Order()
    first = opts.orderby[0]
    for item in opts.orderby:
        if path_of(item.expr) not in (("phenomenonTime",), ("resultTime",), ("id",)):
            raise bad_request(f"Observations can be ordered by phenomenonTime, resultTime "
                              f"or id, not {item.text!r}")
    return Order(by_id=path_of(first.expr) == ("id",), desc=first.desc)


def to_ent(r: Reading) -> Ent:
    oid = f"{ids.datastream_id(r.site, r.device, r.sensor, r.quantity)}.{r.time_ms}"
    return Ent("Observations", oid, {"phenomenonTime": r.time_ms, "resultTime": r.time_ms,
                                     "result": r.value})


def time_key(r: Reading) -> Key:
    return (r.time_ms, r.site, r.device, r.sensor, r.quantity)


@dataclass(frozen=True)
class ObsPlan:
    """The store side of a query: Datastreams (None: all), a time range, the filter."""

    datastreams: frozenset[str] | None
    since_ms: int
    until_ms: int
    #: what the window leaves to decide per row (:func:`.filters.residual`)
    filter: ast._Node | None


class Extents:
    """Where each Datastream's data starts and ends: the bounds of a wide walk.

    The reader's ``readings`` costs a query per time chunk even where nothing is, so a
    walk over months or years must not start before the first reading or go on after
    the last. The start is found with two ``series`` calls aggregated in the store
    (days since :data:`SEARCH_FROM_MS`, then minutes of the first day with data;
    steps stay at most a day: VictoriaMetrics answers nothing for steps of a few
    days), kept for the process (a start only moves later, which costs a few empty
    windows). The end is the newest value the graph holds (``latest_values``,
    refreshed every few seconds) or, for a series quiet longer than the lookback,
    found the same way from the end and kept for :data:`STALE_TTL_S`."""

    def __init__(self, reader: CentreReader, now: Callable[[], float] = time.time) -> None:
        self.reader, self.now = reader, now
        self._first: dict[str, int] = {}
        self._last: dict[str, tuple[float, int | None]] = {}

    def _buckets(self, dsid: str, graph: Graph, lo: int, hi: int, step: int) -> list[int]:
        ds = ids.parse_datastream(dsid)
        if ds is None:
            return []
        return [p.time_ms for p in self.reader.series(
            ds.site, ds.device, graph.domain.get(dsid, ""), ds.quantity, lo, hi, step)
            if p.sensor == ds.sensor]

    def first(self, graph: Graph, dsid: str) -> int | None:
        """At or before the first reading's time; None: no reading at all."""
        if dsid in self._first:
            return self._first[dsid]
        lo, hi = SEARCH_FROM_MS, int(self.now() * 1000) + FUTURE_MS
        for step in (DAY_MS, 60_000):
            got = self._buckets(dsid, graph, lo, hi, step)
            if not got:
                return None
            lo = max(min(got), SEARCH_FROM_MS)
            hi = lo + step
        self._first[dsid] = lo
        return lo

    def last(self, graph: Graph, dsid: str) -> int | None:
        """After the newest reading's time (exclusive); None: no reading at all."""
        if dsid in graph.newest:
            return graph.newest[dsid] + 1
        at, cached = self._last.get(dsid, (-1e18, None))
        if self.now() - at < STALE_TTL_S:
            return cached
        lo, hi = SEARCH_FROM_MS, int(self.now() * 1000) + FUTURE_MS
        found: int | None = None
        for step in (DAY_MS, 60_000):
            got = self._buckets(dsid, graph, lo, hi, step)
            if not got:
                break
            lo = max(got)
            hi = found = lo + step
        self._last[dsid] = (self.now(), found)
        return found


def plan(graph: Graph, scope: frozenset[str] | None, since_ms: int, until_ms: int,
         opts: Options) -> ObsPlan:
    def admits(node: ast._Node) -> frozenset[str]:
        return frozenset(d for d in (scope if scope is not None else graph.datastreams)
                         if evaluate(node, Ent("Observations", d + ".0", {}), graph) is True)
    w = window(opts.filter, admits)
    ds = w.datastreams if scope is None else (
        scope if w.datastreams is None else scope & w.datastreams)
    return ObsPlan(ds, max(since_ms, w.since_ms), min(until_ms, w.until_ms),
                   residual(opts.filter))


class _Walk:
    """One plan's reads: the reader filters, the exact check, the floor and ceiling."""

    def __init__(self, reader: CentreReader, graph: Graph, extents: Extents, p: ObsPlan,
                 dsids: Sequence[str] | None) -> None:
        self.reader, self.graph, self.p = reader, graph, p
        self.dsids = None if dsids is None else frozenset(dsids)
        parsed = [ids.parse_datastream(d) for d in (dsids if dsids is not None else ())]
        dss = [d for d in parsed if d is not None]
        self.devices = sorted({d.device for d in dss})
        # Sites only when no device narrows the read: the rows are checked against the
        # exact Datastream ids below anyway, and the SQLite reader walks every series of
        # the sites it is given (the whole site, per time chunk), where the device
        # filter alone keeps it on the time index: 1 h of one series in a 10M store,
        # ~12 ms against ~260 ms.
        self.sites = [] if self.devices else sorted({d.site for d in dss})
        self.quantities = sorted({d.quantity for d in dss})
        self.domains = sorted({graph.domain.get(str(d), "") for d in dss} - {""})
        self.lo = p.since_ms
        self.hi = min(p.until_ms, int(time.time() * 1000) + FUTURE_MS)
        every = list(dsids if dsids is not None else graph.datastreams)
        if self.hi - self.lo > WIDE_MS:  # a wide window: bound it by where the data is
            firsts = [f for f in (extents.first(graph, d) for d in every) if f is not None]
            lasts = [x for x in (extents.last(graph, d) for d in every) if x is not None]
            self.lo = max(self.lo, min(firsts, default=self.hi))
            self.hi = min(self.hi, max(lasts, default=self.lo))

    def rows(self, since: int, until: int) -> Iterator[Reading]:
        nav = self.graph
        for r in self.reader.readings(since, until, self.sites, self.devices, self.domains,
                                      self.quantities):
            if self.dsids is not None and ids.datastream_id(
                    r.site, r.device, r.sensor, r.quantity) not in self.dsids:
                continue
            if self.p.filter is not None and evaluate(self.p.filter, to_ent(r), nav) is not True:
                continue
            yield r

    def forward(self, after: Key | None, w: int, hint: list[int]) -> Iterator[Reading]:
        start = self.lo if after is None else max(self.lo, after[0])
        while start < self.hi:
            end = min(self.hi, start + w)
            hint[0] = w
            n = 0
            for r in self.rows(start, end):
                if after is not None and time_key(r) <= after:
                    continue
                n += 1
                yield r
            start = end
            if n < 100:
                w = min(w * 4, MAX_WINDOW_MS)

    def backward(self, before: Key | None, w: int, need: int, hint: list[int]
                 ) -> Iterator[Reading]:
        end = self.hi if before is None else min(self.hi, before[0] + 1)
        while end > self.lo:
            start = max(self.lo, end - w)
            hint[0] = w
            # at most a page and one more, whatever $skip asks: a full buffer resumes below
            # its oldest row, so a large skip costs re-reads, never memory
            buf: deque[Reading] = deque(maxlen=max(min(need, MAX_BUFFER), 1))
            for r in self.rows(start, end):
                if before is None or time_key(r) < before:
                    buf.append(r)
            full = len(buf) == buf.maxlen
            yield from reversed(buf)
            if full:  # this window may hold older rows still: resume below the oldest
                before = time_key(buf[0])
                end = buf[0].time_ms + 1
            else:
                end = start
                if len(buf) < 100:
                    w = min(w * 4, MAX_WINDOW_MS)


def stream(reader: CentreReader, graph: Graph, extents: Extents, p: ObsPlan, order: Order,
           token: dict[str, object] | None, need: int, hint: list[int]
           ) -> Iterator[tuple[Reading, dict[str, object]]]:
    """(reading, its cursor state) in ``order``, after ``token``'s position; ``need`` is
    how many the caller may take (bounds the backward walk's memory)."""
    if p.datastreams is not None and not p.datastreams or p.since_ms >= p.until_ms:
        return
    w = int(token["w"]) if token and isinstance(token.get("w"), int) else HOUR_MS  # type: ignore[call-overload]
    raw = token.get("k") if token else None
    key: Key | None = None
    if isinstance(raw, list) and len(raw) == 5:
        key = (int(raw[0]), str(raw[1]), str(raw[2]), str(raw[3]), str(raw[4]))
    if not order.by_id:
        walk = _Walk(reader, graph, extents, p,
                     None if p.datastreams is None else sorted(p.datastreams))
        rows = walk.backward(key, w, need, hint) if order.desc else walk.forward(key, w, hint)
        for r in rows:
            yield r, {"k": list(time_key(r)), "w": hint[0]}
        return
    every = sorted(p.datastreams if p.datastreams is not None else graph.datastreams,
                   reverse=order.desc)
    for dsid in every:
        ds = ids.parse_datastream(dsid)
        if ds is None:
            continue
        here: Key | None = None
        if key is not None:
            last = ids.datastream_id(*key[1:])
            if (dsid < last) if not order.desc else (dsid > last):
                continue
            here = key if dsid == last else None
        walk = _Walk(reader, graph, extents, p, [dsid])
        rows = walk.backward(here, w, need, hint) if order.desc else walk.forward(here, w, hint)
        for r in rows:
            yield r, {"k": list(time_key(r)), "w": hint[0]}


def observation(reader: CentreReader, graph: Graph, key: str) -> Reading | None:
    """One Observation by id: a one-millisecond read of its Datastream."""
    o = ids.parse_observation(key)
    if o is None:
        return None
    ds = o.datastream
    dom = graph.domain.get(str(ds), "")
    for r in reader.readings(o.time_ms, o.time_ms + 1, [ds.site], [ds.device],
                             [dom] if dom else [], [ds.quantity]):
        if r.sensor == ds.sensor:
            return r
    return None


def count(reader: CentreReader, graph: Graph, extents: Extents, p: ObsPlan) -> int:
    """How many rows ``p`` matches: a full forward walk, streamed (bounded memory)."""
    hint = [DAY_MS]
    return sum(1 for _ in stream(reader, graph, extents, p, Order(), {"w": DAY_MS},
                                 1, hint))
