"""Long-format writers (wire contract, "Export format"): CSV and Parquet, one chunk at a
time, so nothing but the current chunk is ever in memory."""

from __future__ import annotations

import csv
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from gateway.stores import Reading

from .units import unit_of

__all__ = ["COLUMNS", "CsvWriter", "ParquetWriter", "ReadingsWriter", "TimeFormat", "text_cell"]

COLUMNS = ("time", "site", "device", "sensor", "domain", "quantity", "value", "unit")


# A cell starting with one of these is a formula to a spreadsheet (=HYPERLINK(...),
# +cmd|..., @SUM, a tab or CR): OWASP's "CSV injection". Free text a person typed
# (room, zone, note) is prefixed with a quote so it stays text.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def text_cell(value: str) -> str:
    """Free text for a CSV cell, never read as a formula by a spreadsheet."""
    return "'" + value if value.startswith(_FORMULA_START) else value


class TimeFormat:
    """ms -> ``2026-11-25T10:00:00.123Z``; the seconds part is cached (rows come sorted)."""

    def __init__(self) -> None:
        self._sec = -1
        self._head = ""

    def __call__(self, ms: int) -> str:
        sec, frac = divmod(ms, 1000)
        if sec != self._sec:
            self._sec = sec
            self._head = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
        return f"{self._head}.{frac:03d}Z"


class ReadingsWriter(Protocol):
    def write(self, rows: Sequence[Reading]) -> None: ...

    def close(self) -> None: ...


class CsvWriter:
    def __init__(self, path: Path) -> None:
        self._f = open(path, "w", encoding="utf-8", newline="")  # noqa: SIM115
        self._w = csv.writer(self._f, lineterminator="\n")
        self._w.writerow(COLUMNS)
        self._fmt = TimeFormat()
        self._units: dict[tuple[str, str], str] = {}

    def _unit(self, domain: str, quantity: str) -> str:
        key = (domain, quantity)
        u = self._units.get(key)
        if u is None:
            u = self._units[key] = unit_of(domain, quantity)
        return u

    def write(self, rows: Sequence[Reading]) -> None:
        fmt, unit = self._fmt, self._unit
        self._w.writerows((fmt(r.time_ms), r.site, r.device, r.sensor, r.domain, r.quantity,
                           repr(r.value), unit(r.domain, r.quantity)) for r in rows)

    def close(self) -> None:
        self._f.close()


class ParquetWriter:
    """``time`` timestamp[ms, UTC], ``value`` float64, the rest strings; a row group per
    chunk."""

    def __init__(self, path: Path) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        self._pa: Any = pa
        self.schema = pa.schema([
            ("time", pa.timestamp("ms", tz="UTC")), ("site", pa.string()),
            ("device", pa.string()), ("sensor", pa.string()), ("domain", pa.string()),
            ("quantity", pa.string()), ("value", pa.float64()), ("unit", pa.string())])
        self._w: Any = pq.ParquetWriter(str(path), self.schema, compression="zstd")

    def write(self, rows: Sequence[Reading]) -> None:
        if not rows:
            return
        pa = self._pa
        cols = list(zip(*rows, strict=True))
        units = [unit_of(d, q) for d, q in zip(cols[4], cols[5], strict=True)]
        table = pa.Table.from_arrays(
            [pa.array(cols[0], pa.int64()).cast(pa.timestamp("ms", tz="UTC")),
             *(pa.array(c, pa.string()) for c in cols[1:6]),
             pa.array(cols[6], pa.float64()), pa.array(units, pa.string())],
            schema=self.schema)
        self._w.write_table(table)

    def close(self) -> None:
        self._w.close()
