"""Resource paths: ``Things('a.b')/Datastreams``, ``Observations(k)/Datastream/Thing``,
``Things(k)/name/$value``, resolved against the graph into what a response shows."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..stores.centre import CentreReader
from . import ids
from .errors import bad_request, not_found
from .filters import NEVER
from .graph import NAV, Ent, Graph
from .observations import observation, to_ent

__all__ = ["Collection", "ObsScope", "Property", "Target", "resolve"]

_SEGMENT = re.compile(r"^([A-Za-z]+)(?:\((.*)\))?$")


@dataclass(frozen=True)
class ObsScope:
    """Observations reached through a path: some Datastreams (None: all), a time range."""

    datastreams: frozenset[str] | None = None
    since_ms: int = 0
    until_ms: int = NEVER


@dataclass(frozen=True)
class Collection:
    set: str
    #: the small entities, or where the Observations come from
    items: list[Ent] | ObsScope
    #: the path of the collection (no base), e.g. ``Things('a.b')/Datastreams``
    path: str


@dataclass(frozen=True)
class Property:
    ent: Ent
    name: str
    raw: bool


Target = Collection | Ent | Property


def self_path(ent: Ent) -> str:
    return f"{ent.set}('{ent.id}')"


def obs_scope(graph: Graph, ent: Ent) -> ObsScope:
    """The Observations of a Datastream or of a FeatureOfInterest (its device's
    Datastreams over the deployment's time range)."""
    if ent.set == "Datastreams":
        return ObsScope(frozenset({ent.id}))
    dep = graph.deployment(ent.id)
    key = ids.parse_deployment(ent.id)
    assert key is not None
    prefix = ids.thing_id(key[0], key[1]) + "."
    dss = frozenset(d for d in graph.datastreams if d.startswith(prefix))
    if dep is None:
        return ObsScope(dss)
    first = graph.deployments[(key[0], key[1])][0].number == dep.number
    return ObsScope(dss, 0 if first else dep.since_ms,
                    NEVER if dep.until_ms is None else dep.until_ms)


def navigate(graph: Graph, ent: Ent, nav: str, path: str) -> Collection | Ent:
    target = NAV.get(ent.set, {}).get(nav)
    if target is None:
        raise not_found(f"{ent.set} have no navigation property {nav}")
    if target[0] == "Observations":
        return Collection("Observations", obs_scope(graph, ent), path)
    if target[1]:
        return Collection(target[0], graph.related(ent, nav), path)
    one = graph.one(ent, nav)
    if one is None:
        raise not_found(f"{self_path(ent)} has no {nav}")
    return one


def _entity(reader: CentreReader, graph: Graph, set_name: str, key: str) -> Ent:
    if set_name == "Observations":
        r = observation(reader, graph, key)
        if r is None:
            raise not_found(f"no Observation {key!r}")
        return to_ent(r)
    ent = graph.by_set(set_name).get(key)
    if ent is None:
        raise not_found(f"no {ids.SINGULAR[set_name]} {key!r}")
    return ent


def _within(reader: CentreReader, graph: Graph, ent: Ent, nav: str, key: str) -> Ent:
    """One entity of a navigated collection, by key (404 unless it is related)."""
    target = navigate(graph, ent, nav, "")
    if isinstance(target, Collection) and isinstance(target.items, list):
        found = [e for e in target.items if e.id == key]
        if found:
            return found[0]
    elif isinstance(target, Collection) and isinstance(target.items, ObsScope):
        obs = _entity(reader, graph, "Observations", key)
        o = ids.parse_observation(key)
        scope = target.items
        if o is not None and (scope.datastreams is None or str(o.datastream) in
                              scope.datastreams) and scope.since_ms <= o.time_ms < scope.until_ms:
            return obs
    raise not_found(f"{self_path(ent)} has no {ids.SINGULAR.get(nav, nav)} {key!r}")


def resolve(reader: CentreReader, graph: Graph, path: str) -> Target:
    segs = [s for s in path.split("/") if s]
    m = _SEGMENT.match(segs[0])
    if m is None or m.group(1) not in ids.ENTITY_SETS:
        raise not_found(f"no entity set {segs[0]!r} (see the service root /v1.1)")
    set_name, key = m.group(1), m.group(2)
    cur: Target
    if key is None:
        if set_name == "Observations":
            cur = Collection(set_name, ObsScope(), set_name)
        else:
            cur = Collection(set_name, sorted(graph.by_set(set_name).values(),
                                              key=lambda e: e.id), set_name)
    else:
        cur = _entity(reader, graph, set_name, ids.parse_key(key))
    done = [segs[0]]
    for i, seg in enumerate(segs[1:], 1):
        done.append(seg)
        if isinstance(cur, Property):
            if seg != "$value" or i != len(segs) - 1:
                raise bad_request(f"nothing after a property but $value ({seg!r})")
            cur = Property(cur.ent, cur.name, True)
        elif isinstance(cur, Collection):
            m = _SEGMENT.match(seg)
            raise bad_request(f"address one entity before {seg!r} "
                              f"(e.g. {cur.path}('id')/{m.group(1) if m else seg})")
        elif seg in NAV.get(cur.set, {}):
            cur = navigate(graph, cur, seg, self_path(cur) + "/" + seg)
        elif (m := _SEGMENT.match(seg)) and m.group(2) is not None \
                and m.group(1) in NAV.get(cur.set, {}):  # Things(k)/Datastreams(k2)
            cur = _within(reader, graph, cur, m.group(1), ids.parse_key(m.group(2)))
        elif seg == "id" or seg in cur.props:
            cur = Property(cur, seg, False)
        elif seg == "$ref":
            raise bad_request("$ref is not served (read-only Sensing core)")
        else:
            raise not_found(f"{cur.set} have no property or navigation {seg!r}")
    return cur
