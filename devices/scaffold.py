"""`livinglab sensor new NAME --bus i2c|uart|pin`: the files a new sensor kind needs.

Four files, each found by convention so nothing else has to be edited:

- ``firmware/ll/drivers/NAME.py``: the driver (``open_sensor(board, spec, cfg)``),
- ``firmware/ll/sim/twin_NAME.py``: its twin for the simulated world (``attach_twin``),
- ``tests/firmware/mp/sensors/check_NAME.py``: datasheet-vector checks on the unix port,
- ``devices/sensors/NAME.toml``: the catalogue entry (quantities, bus, address).

``tests/firmware/test_sensor_kits.py`` runs every check file and every convention
sensor in a simulated device, so the suite covers the sensor from its first minute.
:func:`plan` is pure (name -> file texts); :func:`write` refuses to overwrite.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from protocols.quantities import Quantity, Registry

from . import scaffold_templates as t
from .errors import DevicesError
from .scaffold_checks import CHECKS

Bus = Literal["i2c", "uart", "pin"]
NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_WORLD = {  # quantities the simulated world already models
    "temperature": "w.temperature()", "humidity": "w.humidity()",
    "pressure": "w.pressure()", "illuminance": "w.lux()", "co2": "w.co2",
    "flow_rate": "w.flow",
}
_TAKEN = frozenset({"crc8", "sensors", "twins", "buses", "world"})


class ScaffoldError(DevicesError):
    """A sensor that cannot be scaffolded as asked (the message says why and the fix)."""


@dataclass(frozen=True)
class Scaffold:
    """What :func:`write` puts under the repository root: relative path -> text."""

    kind: str
    bus: Bus
    files: dict[str, str]


def class_name(kind: str) -> str:
    """``sen0232`` -> ``Sen0232``, ``soil_probe`` -> ``SoilProbe``."""
    return "".join(p[:1].upper() + p[1:] for p in kind.split("_") if p)


def _centi(x: float) -> int:
    return int(round(x * 100))


def _accessors(qs: list[Quantity]) -> str:
    out = ["", "    def value_centi(self, i):",
           '        """Quantity i (the order of write_values) in 0.01 of its canonical unit."""',
           "        raw = self.raw[i]"]
    for i, q in enumerate(qs):
        call = f"_scale(raw, {_centi(q.min)}, {_centi(q.max)})  # {q.name}, {q.unit}"
        out += ([f"        if i == {i}:", f"            return {call}"] if i < len(qs) - 1
                else [f"        return {call}"])
    out += ["", "    def write_values(self, w):"]
    for i, q in enumerate(qs):
        out += [f'        w.key(b"{q.name}")', f"        w.fixed(self.value_centi({i}), 2)"]
    return "\n".join(out) + "\n"


def _model(qs: list[Quantity]) -> tuple[str, bool]:
    """The twin's per-quantity model: the world's value, or a daily cycle in range."""
    lines: list[str] = []
    needs_math = False
    for i, q in enumerate(qs):
        expr = _WORLD.get(q.name)
        if expr is None:
            needs_math = True
            expr = f"_cycle(w, {i})"
        lines += ([f"        if i == {i}:", f"            return {expr}"] if i < len(qs) - 1
                  else [f"        return {expr}"])
    return "\n".join(lines) + "\n", needs_math


def _vectors(qs: list[Quantity]) -> tuple[str, str, str]:
    vecs, inside, step = [], [], []
    for q in qs:
        lo, hi = _centi(q.min), _centi(q.max)
        vecs.append(tuple((raw, lo + ((hi - lo) * raw + 32767) // 65535)
                          for raw in (0, 32768, 65535)))
        inside.append(round(q.min + 0.3 * (q.max - q.min), 2))
        step.append(math.ceil((hi - lo) / 65535) + 1)
    rows = "".join(f"    {v!r},\n" for v in vecs)
    return f"(\n{rows})", repr(tuple(inside)), repr(tuple(step))


def plan(kind: str, bus: Bus, quantities: list[str], registry: Registry,
         address: int = 0x40, description: str = "",
         known: Collection[str] = ()) -> Scaffold:
    """The four files for sensor ``kind`` measuring ``quantities`` (known to ``registry``);
    ``known`` are the catalogue's kinds, which a new one may not reuse."""
    if not NAME_RE.match(kind) or kind in _TAKEN:
        raise ScaffoldError(f"sensor name {kind!r} must match {NAME_RE.pattern} and not be one "
                            "of the firmware's own modules (e.g. sen0232, soil_probe)")
    if kind in known:
        raise ScaffoldError(f"sensor {kind!r} is already in the catalogue "
                            "(choose another NAME)")
    qs: list[Quantity] = []
    for name in dict.fromkeys(quantities):
        q = registry.get(name)
        if q is None:
            raise ScaffoldError(f"quantity {name!r} is neither built in nor in the config's "
                                f"[quantities] (add [quantities.{name}] and pass --config FILE)")
        qs.append(q)
    if not qs:
        raise ScaffoldError("no quantity given (pass --quantity NAME)")
    if bus == "pin" and len(qs) > 1:
        raise ScaffoldError("a pin (ADC) sensor measures one quantity (pass one --quantity)")
    if not 0x08 <= address <= 0x77:
        raise ScaffoldError(f"I2C address {address:#x} outside 0x08..0x77")
    n = len(qs)
    frame = 2 + 2 * n + 2
    model, needs_math = _model(qs)
    vectors, inside, step = _vectors(qs)
    site = [q for q in qs if registry.is_site(q.name)]
    title = description or f"{kind} ({', '.join(q.name for q in qs)})"
    tokens = {
        "@TWIN_ARGS@": t.TWIN_ARGS[bus], "@TWIN_INIT@": t.TWIN_INIT[bus],
        "@ACCESSORS@": _accessors(qs), "@MODEL@": model,
        "@IMPORTS@": t.CYCLE if needs_math else "",
        "@PROTOCOL@": t.PROTOCOLS[bus], "@TITLE@": json.dumps(title)[1:-1],
        "@TITLE_COMMENT@": title.splitlines()[0][:96] if title else kind,
        "@CLASS@": class_name(kind), "@KIND@": kind, "@N@": str(n),
        "@FRAME@": str(frame), "@SCAN@": str(10 * frame), "@FIFO@": str(max(64, 3 * frame)),
        "@ADDRESS@": f"0x{address:02X}",
        "@SPAN@": repr(tuple((q.min, q.max) for q in qs)),
        "@VECTORS@": vectors, "@INSIDE@": inside, "@STEP@": step,
        "@QLIST@": "[" + ", ".join(f'"{q.name}"' for q in qs) + "]",
        "@CAT_BUS@": bus,
        "@ADDRESS_LINE@": f"default_address = 0x{address:02X}\n" if bus == "i2c" else "",
        "@SITE_QUANTITIES@": "".join(
            f'\n[site_quantities.{q.name}]\nunit = "{q.unit}"\ndomain = "{q.domain}"\n'
            f"min = {q.min!r}\nmax = {q.max!r}\n" for q in site),
    }

    def fill(text: str) -> str:
        for _ in range(2):  # tokens inside tokens (TWIN_INIT uses @N@)
            for key, value in tokens.items():
                text = text.replace(key, value)
        return text

    files = {
        f"firmware/ll/drivers/{kind}.py": fill(t.DRIVERS[bus]),
        f"firmware/ll/sim/twin_{kind}.py": fill(t.TWINS[bus]),
        f"tests/firmware/mp/sensors/check_{kind}.py": fill(CHECKS[bus]),
        f"devices/sensors/{kind}.toml": fill(t.CATALOGUE),
    }
    return Scaffold(kind, bus, files)


def write(scaffold: Scaffold, root: Path) -> list[Path]:
    """Create the files under ``root``; refuses (writing nothing) if any exists."""
    paths = [root / rel for rel in scaffold.files]
    for p in paths:
        if p.exists():
            raise ScaffoldError(f"{p} exists (choose another NAME, or delete it first)")
    for p, text in zip(paths, scaffold.files.values(), strict=True):
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")
    return paths
