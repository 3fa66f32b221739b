"""The demo's live terminal view: one row per device, refreshed about once a second.

Rendering is pure (rows in, lines out) so it is tested without a terminal. On a
TTY the table is redrawn in place; when stdout is a pipe or a file (CI, ``| tee``)
the view prints plain lines every few seconds instead, so a log stays readable.
Units come from the site's quantity registry (``Config.registry``), so a site's own
quantities (``[quantities.NAME]``) show theirs too.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TextIO

from protocols.quantities import Registry

# What a person looks at first, per kind; anything else the device sends follows.
HEADLINE: Mapping[str, tuple[str, ...]] = {
    "air": ("co2", "temperature", "humidity", "pressure", "pm2_5"),
    "light": ("illuminance", "cct"),
    "flow": ("flow_rate", "volume", "water_temperature"),
}
SHORT: Mapping[str, str] = {"temperature": "T", "humidity": "RH", "pressure": "p",
                            "illuminance": "E", "flow_rate": "flow", "volume": "vol",
                            "water_temperature": "Tw"}
UNITS: Mapping[str, str] = {"degC": "°C", "ug/m3": "µg/m³", "%RH": "%"}


@dataclass(frozen=True)
class DeviceRow:
    """What the view shows of one device."""

    device: str
    kind: str
    values: Mapping[str, float] = field(default_factory=dict)
    messages: int = 0
    landed: int | None = None  # readings in the store; None when the store is not queryable
    last_seen: float | None = None
    state: str = ""


def format_value(name: str, value: float, registry: Registry) -> str:
    """``co2 612 ppm``, ``T 22.4 °C``: short name, sensible precision, canonical unit."""
    unit = registry.unit_of(name) or ""
    unit = UNITS.get(unit, unit)
    digits = 0 if abs(value) >= 100 or float(value).is_integer() else 1
    sep = "" if unit in ("%", "°C") else " "
    return f"{SHORT.get(name, name)} {value:.{digits}f}{sep}{unit}".rstrip()


def format_values(kind: str, values: Mapping[str, float], registry: Registry,
                  limit: int = 5) -> str:
    names = [n for n in HEADLINE.get(kind, ()) if n in values]
    names += sorted(n for n in values if n not in names)
    return "  ".join(format_value(n, values[n], registry) for n in names[:limit]) or "-"


def ago(last_seen: float | None, now: float) -> str:
    if last_seen is None:
        return "never"
    return f"{max(0.0, now - last_seen):.0f} s ago"


def render_table(rows: Sequence[DeviceRow], header: str, now: float,
                 registry: Registry) -> list[str]:
    """The full-screen table (TTY mode)."""
    out = [header, "",
           f"{'DEVICE':<12} {'KIND':<6} {'LAST VALUES':<58} {'MSGS':>5} {'LANDED':>7}  LAST SEEN"]
    for r in rows:
        landed = "-" if r.landed is None else str(r.landed)
        state = "" if r.state in ("", "online") else f" ({r.state})"
        out.append(f"{r.device:<12} {r.kind:<6} {format_values(r.kind, r.values, registry):<58} "
                   f"{r.messages:>5} {landed:>7}  {ago(r.last_seen, now)}{state}")
    if not rows:
        out.append("(no device has reported yet)")
    return out


def render_lines(rows: Sequence[DeviceRow], elapsed: float, now: float,
                 registry: Registry) -> list[str]:
    """One plain line per device (pipe/file mode)."""
    out = []
    for r in rows:
        landed = "-" if r.landed is None else str(r.landed)
        values = format_values(r.kind, r.values, registry)
        out.append(f"[{elapsed:4.0f}s] {r.device:<11} {values} | "
                   f"msgs {r.messages} landed {landed} | seen {ago(r.last_seen, now)}")
    return out


class LiveView:
    """Draws rows to ``out``: in place on a TTY, as plain lines every ``line_every`` s."""

    def __init__(self, out: TextIO, registry: Registry, tty: bool | None = None,
                 line_every: float = 5.0) -> None:
        self.out = out
        self.registry = registry
        self.tty = out.isatty() if tty is None else tty
        self.line_every = line_every
        self._last_lines = 0.0

    def update(self, rows: Sequence[DeviceRow], header: str, elapsed: float) -> None:
        now, mono = time.time(), time.monotonic()
        if self.tty:
            # home + clear screen, then the table; one write so the screen does not flicker
            table = render_table(rows, header, now, self.registry)
            self.out.write("\x1b[H\x1b[2J" + "\n".join(table) + "\n")
        elif mono - self._last_lines >= self.line_every:
            self._last_lines = mono
            lines = render_lines(rows, elapsed, now, self.registry)
            if lines:
                self.out.write("\n".join(lines) + "\n")
        self.out.flush()
