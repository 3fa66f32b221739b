"""The contract's quantity table plus a site's additions: canonical unit, domain, range.

Data, not code: adding a built-in quantity is one line here plus a line in the
contract. A site adds its own with ``[quantities.NAME]`` in the config (see
``docs/new-sensor.md``); :func:`site_quantity` checks one such entry and
:class:`Registry` is what every stage that validates or describes readings takes.
The domain is the InfluxDB measurement a value lands in.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

Domain = Literal["air", "light", "flow"]
DOMAINS: tuple[Domain, ...] = ("air", "light", "flow")
#: measurements the gateway writes itself: a site quantity may not land in them
RESERVED_DOMAINS: tuple[str, ...] = ("device", "delivery", "gateway", "station",
                                     "rejections")
#: ``{measurement}_info`` carries the strings of the reserved points (wire contract)
RESERVED_SUFFIX = "_info"
NAME_PATTERN = r"^[a-z][a-z0-9_]{0,31}$"
_NAME = re.compile(NAME_PATTERN)


@dataclass(frozen=True)
class Quantity:
    """One measurable quantity; ``min``/``max`` are inclusive plausibility bounds.

    ``domain`` is one of :data:`DOMAINS` for the built-ins and any name matching
    :data:`NAME_PATTERN` (except the reserved ones) for a site's additions.
    """

    name: str
    unit: str
    domain: str
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


class QuantityError(ValueError):
    """A site quantity that the contract does not allow; ``field`` names the bad key."""

    def __init__(self, name: str, field: str, why: str) -> None:
        super().__init__(why)
        self.name = name
        self.field = field
        self.why = why


def site_quantity(name: str, unit: str, domain: str, lo: float, hi: float) -> Quantity:
    """Check one ``[quantities.NAME]`` entry against the contract's rules."""
    if not _NAME.match(name):
        raise QuantityError(name, "", f"name {name!r} does not match {NAME_PATTERN} "
                                      "(lowercase letters, digits, underscore)")
    if name in QUANTITIES:
        raise QuantityError(name, "", f"{name!r} is a built-in quantity "
                                      "(remove the section, or choose another name)")
    if not _NAME.match(domain):
        raise QuantityError(name, "domain", f"domain {domain!r} does not match {NAME_PATTERN}")
    if domain in RESERVED_DOMAINS or domain.endswith(RESERVED_SUFFIX):
        raise QuantityError(name, "domain", f"domain {domain!r} is reserved for the gateway's "
                                            "own points (choose e.g. 'air' or a new one)")
    if not unit or not unit.isprintable():
        raise QuantityError(name, "unit", "unit must be a non-empty printable string")
    lo, hi = float(lo), float(hi)
    if not (lo - lo == 0.0 and hi - hi == 0.0):
        raise QuantityError(name, "min", "min and max must be finite numbers")
    if lo > hi:
        raise QuantityError(name, "min", f"min {lo:g} is above max {hi:g} (swap them)")
    return Quantity(name, unit, domain, lo, hi)


class Registry:
    """The quantities a site accepts: the built-ins plus its additions. Immutable.

    The small API the console, exports and docs use: ``unit_of(q)``,
    ``domain_of(q)``, ``get(q)``, ``q in registry``, iteration in table order.
    """

    __slots__ = ("_all", "rules", "site")

    def __init__(self, site: Iterable[Quantity] = ()) -> None:
        extra = tuple(site)
        table = dict(QUANTITIES)
        for q in extra:
            if q.name in table:
                raise QuantityError(q.name, "", f"{q.name!r} is defined twice")
            table[q.name] = q
        self._all: Mapping[str, Quantity] = MappingProxyType(table)
        #: the site's additions, in config order
        self.site: tuple[Quantity, ...] = extra
        #: quantity -> (min, max, domain): a plain dict for the validation hot path
        self.rules: dict[str, tuple[float, float, str]] = {
            q.name: (q.min, q.max, q.domain) for q in table.values()}

    def get(self, name: str) -> Quantity | None:
        return self._all.get(name)

    def unit_of(self, name: str) -> str | None:
        """Canonical unit of ``name``, None for a quantity the site does not know."""
        q = self._all.get(name)
        return q.unit if q is not None else None

    def domain_of(self, name: str) -> str | None:
        """Domain (InfluxDB measurement) of ``name``, None when unknown."""
        q = self._all.get(name)
        return q.domain if q is not None else None

    @property
    def quantities(self) -> Mapping[str, Quantity]:
        """Every quantity by name: built-ins first, then the site's."""
        return self._all

    @property
    def domains(self) -> tuple[str, ...]:
        """Every domain a reading can land in, built-ins first."""
        out: list[str] = [*DOMAINS, *(q.domain for q in self.site)]
        return tuple(dict.fromkeys(out))

    def is_site(self, name: str) -> bool:
        return any(q.name == name for q in self.site)

    def __contains__(self, name: object) -> bool:
        return name in self._all

    def __iter__(self) -> Iterator[Quantity]:
        return iter(self._all.values())

    def __len__(self) -> int:
        return len(self._all)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Registry) and self.site == other.site

    def __hash__(self) -> int:
        return hash(self.site)

    def __repr__(self) -> str:
        return f"Registry(site={[q.name for q in self.site]!r})"


#: the contract's quantities only (what a site without ``[quantities]`` accepts)
BUILTIN = Registry()
