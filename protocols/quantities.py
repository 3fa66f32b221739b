"""The contract's quantity table: canonical unit, InfluxDB measurement (domain), range.

Data, not code: adding a quantity is one line here plus a line in the contract.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

Domain = Literal["air", "light", "flow"]
DOMAINS: tuple[Domain, ...] = ("air", "light", "flow")


@dataclass(frozen=True)
class Quantity:
    """One measurable quantity; ``min``/``max`` are inclusive plausibility bounds."""

    name: str
    unit: str
    domain: Domain
    min: float
    max: float


def _table(*rows: tuple[str, str, Domain, float, float]) -> Mapping[str, Quantity]:
    return MappingProxyType({r[0]: Quantity(*r) for r in rows})


QUANTITIES: Mapping[str, Quantity] = _table(
    ("co2", "ppm", "air", 0.0, 40000.0),
    ("temperature", "degC", "air", -40.0, 85.0),
    ("humidity", "%RH", "air", 0.0, 100.0),
    ("pressure", "hPa", "air", 300.0, 1100.0),
    ("pm1_0", "ug/m3", "air", 0.0, 1000.0),
    ("pm2_5", "ug/m3", "air", 0.0, 1000.0),
    ("pm10", "ug/m3", "air", 0.0, 1000.0),
    ("tvoc", "ppb", "air", 0.0, 60000.0),
    ("illuminance", "lx", "light", 0.0, 200000.0),
    ("cct", "K", "light", 1000.0, 25000.0),
    ("flow_rate", "L/min", "flow", 0.0, 1000.0),
    ("volume", "L", "flow", 0.0, 1e9),
    ("water_temperature", "degC", "flow", -10.0, 100.0),
)
