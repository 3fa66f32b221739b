"""Responses: entities as JSON with links, pages of collections with cursors.

One :class:`Renderer` per request: it holds the base URL, the graph and the
reader, and turns a resolved target plus its options into the JSON body,
applying ``$filter``, ``$orderby``, ``$skip``/``$skiptoken``, ``$top``,
``$count``, ``$select`` and ``$expand`` (nested, recursively) the same way at
every level.
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import urllib.parse
from collections.abc import Iterator
from typing import Any

from ..stores.centre import CentreReader
from ..stores.reading import Reading
from . import cursor, ids
from .errors import bad_request
from .filters import TIME_PROPS, evaluate
from .graph import NAV, Ent, Graph
from .observations import Extents, Order, order_of, plan, stream, time_key, to_ent
from .observations import count as count_observations
from .options import MAX_TOP, Options
from .resolve import Collection, ObsScope, obs_scope, self_path

__all__ = ["Renderer", "iso"]


@functools.lru_cache(maxsize=4096)
def _iso_s(s: int) -> str:
    return dt.datetime.fromtimestamp(s, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")


def iso(ms: int) -> str:
    """Unix ms -> ``2026-11-25T10:00:00.123Z`` (cached per second: a page of a dense
    series formats each second once, for both times of each observation)."""
    s, frac = divmod(ms, 1000)
    return f"{_iso_s(s)}.{frac:03d}Z"


def _sortable(v: Any) -> tuple[int, str, Any]:
    if v is None:
        return (0, "", 0)
    if isinstance(v, bool | int | float):
        return (1, "", float(v))
    return (2, type(v).__name__, v if isinstance(v, str) else str(v))


class Renderer:
    def __init__(self, base: str, reader: CentreReader, graph: Graph, extents: Extents) -> None:
        self.base, self.reader, self.graph, self.extents = base, reader, graph, extents
        self._latest: dict[tuple[str, str], dict[str, Reading]] = {}

    # -- entities -------------------------------------------------------------------

    def value(self, ent: Ent, name: str) -> Any:
        if name == "id":
            return ent.id
        v = ent.props[name]
        return iso(v) if name in TIME_PROPS and isinstance(v, int) else v

    def entity(self, ent: Ent, opts: Options) -> dict[str, Any]:
        link = f"{self.base}/{self_path(ent)}"
        sel = set(opts.select)
        out: dict[str, Any] = {}
        if not sel or "id" in sel:
            out["@iot.id"] = ent.id
        if not sel or "selfLink" in sel:
            out["@iot.selfLink"] = link
        for name in ent.props:
            if not sel or name in sel:
                out[name] = self.value(ent, name)
        navs = NAV[ent.set]
        unknown = sel - set(ent.props) - set(navs) - {"id", "selfLink"}
        if unknown:
            raise bad_request(f"{ent.set} have no property {sorted(unknown)[0]!r} to $select")
        for nav in navs:
            if (not sel or nav in sel) and nav not in opts.expand:
                out[f"{nav}@iot.navigationLink"] = f"{link}/{nav}"
        for nav, sub in opts.expand.items():
            if nav not in navs:
                raise bad_request(f"{ent.set} have no navigation property {nav!r} to $expand")
            target, many = navs[nav]
            path = f"{self_path(ent)}/{nav}"
            if target == "Observations":
                out.update(self.collection(Collection(target, obs_scope(self.graph, ent), path),
                                           sub, prefix=nav))
            elif many:
                out.update(self.collection(Collection(target, self.graph.related(ent, nav),
                                                      path), sub, prefix=nav))
            else:
                one = self.graph.one(ent, nav)
                out[nav] = None if one is None else self.entity(one, sub)
        return out

    # -- collections ----------------------------------------------------------------

    def collection(self, col: Collection, opts: Options, prefix: str = "") -> dict[str, Any]:
        """``{"@iot.count"?, "value", "@iot.nextLink"?}``; with ``prefix`` (an expanded
        navigation) the keys are ``{prefix}``, ``{prefix}@iot.count``, ..."""
        top = min(opts.top, MAX_TOP)
        token = cursor.decode(opts.skiptoken) if opts.skiptoken else None
        if isinstance(col.items, ObsScope):
            page, state, total = self._observations(col.items, opts, token, top)
            rendered = [self.entity(to_ent(r), opts) for r in page]
        else:
            ents, state, total = self._small(col.items, opts, token, top)
            rendered = [self.entity(e, opts) for e in ents]
        out: dict[str, Any] = {}
        name = prefix or "value"
        if opts.count:
            out[f"{prefix}@iot.count"] = total
        out[name] = rendered
        if state is not None:
            params = dict(opts.raw)
            params["$skiptoken"] = cursor.encode(state)
            out[f"{prefix}@iot.nextLink"] = (f"{self.base}/{col.path}?"
                                             + urllib.parse.urlencode(params, safe="$(),;'/"))
        return out

    def _small(self, items: list[Ent], opts: Options, token: dict[str, Any] | None, top: int
               ) -> tuple[list[Ent], dict[str, Any] | None, int | None]:
        nav = self.graph
        if opts.filter is not None:
            items = [e for e in items if evaluate(opts.filter, e, nav) is True]
        order = opts.orderby

        def key(e: Ent) -> list[Any]:
            return [_sortable(evaluate(o.expr, e, nav)) for o in order] + [_sortable(e.id)]
        dirs = [o.desc for o in order] + [False]

        def cmp(a: list[Any], b: list[Any]) -> int:
            for x, y, desc in zip(a, b, dirs, strict=True):
                if x != y:
                    return (-1 if x < y else 1) * (-1 if desc else 1)
            return 0
        pairs: list[tuple[list[Any], Ent]] = [(key(e), e) for e in items]

        def cmp_pairs(a: tuple[list[Any], Ent], b: tuple[list[Any], Ent]) -> int:
            return cmp(a[0], b[0])
        keyed = sorted(pairs, key=functools.cmp_to_key(cmp_pairs))
        total = len(keyed) if opts.count else None
        if token is not None:
            last = [tuple(k) for k in token.get("k", [])]
            if len(last) != len(dirs):
                raise bad_request("invalid $skiptoken (take nextLinks as they are)")
            keyed = [ke for ke in keyed if cmp(ke[0], last) > 0]
        else:
            keyed = keyed[opts.skip:]
        page = keyed[:top]
        state = {"k": page[-1][0]} if len(keyed) > top and page else None
        return [e for _, e in page], state, total

    def _observations(self, scope: ObsScope, opts: Options, token: dict[str, Any] | None,
                      top: int) -> tuple[list[Reading], dict[str, Any] | None, int | None]:
        order = order_of(opts)
        p = plan(self.graph, scope.datastreams, scope.since_ms, scope.until_ms, opts)
        total = count_observations(self.reader, self.graph, self.extents, p) if opts.count \
            else None
        if top == 0:
            return [], None, total
        fast = self._latest_one(scope, opts, order, token)
        if fast is not None:
            return fast, ({"k": list(time_key(fast[0])), "w": 3_600_000} if fast else None), total
        skip = 0 if token else opts.skip
        hint = [0]
        rows: Iterator[tuple[Reading, dict[str, Any]]] = stream(
            self.reader, self.graph, self.extents, p, order, token, skip + top + 1, hint)
        got = list(itertools.islice(rows, skip, skip + top + 1))
        page = got[:top]
        state = page[-1][1] if len(got) > top else None
        return [r for r, _ in page], state, total

    def _latest_one(self, scope: ObsScope, opts: Options, order: Order,
                    token: dict[str, Any] | None) -> list[Reading] | None:
        """``$top=1&$orderby=phenomenonTime desc`` of one Datastream (the latest value,
        e.g. expanded for every Datastream of a Thing): one ``latest_values`` call per
        device and request instead of a backward walk per Datastream."""
        if (opts.top != 1 or order.by_id or not order.desc or opts.filter is not None
                or opts.skip or token or scope.datastreams is None
                or len(scope.datastreams) != 1 or scope.since_ms or scope.until_ms < (1 << 62)):
            return None
        (dsid,) = scope.datastreams
        ds = ids.parse_datastream(dsid)
        if ds is None:
            return None
        memo = self._latest.get((ds.site, ds.device))
        if memo is None:
            memo = {ids.datastream_id(r.site, r.device, r.sensor, r.quantity): r
                    for r in self.reader.latest_values([ds.site], [ds.device])}
            self._latest[(ds.site, ds.device)] = memo
        r = memo.get(dsid)
        return [r] if r is not None else None

    def property(self, ent: Ent, name: str, raw: bool) -> Any:
        v = self.value(ent, name)
        return v if not raw else ("" if v is None else str(v))
