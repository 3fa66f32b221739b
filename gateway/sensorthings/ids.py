"""Entity ids: stable strings built from the store's tags (interfaces spec, "SensorThings").

Things ``{site}.{device}``; Datastreams ``{site}.{device}.{sensor}.{quantity}``;
Observations ``{datastream}.{time_ms}``; Sensors the sensor kind;
ObservedProperties the quantity; Locations, HistoricalLocations and
FeaturesOfInterest ``{site}.{device}.{deployment}``. Site and device ids never
hold a dot (``ID_PATTERN``), nor do sensor kinds and quantities, so splitting on
``.`` is unambiguous. A key in a URL may be quoted (``Things('a.b')``) or bare.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from .errors import bad_request

__all__ = ["DatastreamId", "ObservationId", "ENTITY_SETS", "SINGULAR", "datastream_id",
           "deployment_id", "parse_datastream", "parse_deployment", "parse_key",
           "parse_observation", "parse_thing", "thing_id"]

#: entity set -> the singular navigation name that points at one of them
SINGULAR = {
    "Things": "Thing", "Locations": "Location", "HistoricalLocations": "HistoricalLocation",
    "Datastreams": "Datastream", "Sensors": "Sensor", "ObservedProperties": "ObservedProperty",
    "Observations": "Observation", "FeaturesOfInterest": "FeatureOfInterest",
}
ENTITY_SETS = tuple(SINGULAR)
_PART = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


class DatastreamId(NamedTuple):
    site: str
    device: str
    sensor: str
    quantity: str

    def __str__(self) -> str:
        return ".".join(self)


class ObservationId(NamedTuple):
    datastream: DatastreamId
    time_ms: int


def thing_id(site: str, device: str) -> str:
    return f"{site}.{device}"


def datastream_id(site: str, device: str, sensor: str, quantity: str) -> str:
    return f"{site}.{device}.{sensor}.{quantity}"


def deployment_id(site: str, device: str, deployment: int) -> str:
    return f"{site}.{device}.{deployment}"


def parse_key(raw: str) -> str:
    """The text between the parentheses of ``Set(key)``: ``'a.b'`` or ``a.b``."""
    if len(raw) >= 2 and raw[0] == "'" and raw[-1] == "'":
        return raw[1:-1].replace("''", "'")
    if "'" in raw:
        raise bad_request(f"malformed entity key ({raw})")
    return raw


def _parts(key: str, n: int) -> list[str] | None:
    parts = key.split(".")
    if len(parts) != n or not all(_PART.match(p) for p in parts):
        return None
    return parts


def parse_thing(key: str) -> tuple[str, str] | None:
    p = _parts(key, 2)
    return (p[0], p[1]) if p else None


def parse_datastream(key: str) -> DatastreamId | None:
    p = _parts(key, 4)
    return DatastreamId(*p) if p else None


def parse_deployment(key: str) -> tuple[str, str, int] | None:
    p = _parts(key, 3)
    if not p or not p[2].isdigit():
        return None
    return p[0], p[1], int(p[2])


def parse_observation(key: str) -> ObservationId | None:
    head, _, tail = key.rpartition(".")
    ds = parse_datastream(head)
    if ds is None or not tail.isdigit() or len(tail) > 15:
        return None
    return ObservationId(ds, int(tail))
