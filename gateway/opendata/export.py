"""``livinglab export``: readings from the store in long format, streamed in time chunks,
written under a temporary name and renamed to ``--out`` only once complete."""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TextIO

from gateway.config import Config
from gateway.stores import StoreReader, make_reader, read_chunks
from protocols import DOMAINS

from .errors import ExportError
from .writers import CsvWriter, ParquetWriter, ReadingsWriter

__all__ = ["ExportStats", "Format", "Progress", "export"]

Format = Literal["csv", "parquet", "datapackage"]


@dataclass(frozen=True)
class ExportStats:
    readings: int
    delivery_rows: int
    devices: tuple[str, ...]
    seconds: float


class Progress:
    """A one-line progress bar on a terminal (stderr); silent otherwise."""

    def __init__(self, stream: TextIO | None, total_ms: int) -> None:
        self._s = stream if stream is not None and stream.isatty() else None
        self._total = max(total_ms, 1)
        self._t0 = time.monotonic()

    def update(self, done_ms: int, readings: int) -> None:
        if self._s is None:
            return
        frac = min(done_ms / self._total, 1.0)
        bar = "#" * int(frac * 30)
        rate = readings / max(time.monotonic() - self._t0, 1e-6)
        self._s.write(f"\rexport [{bar:<30}] {frac:4.0%} {readings:,} readings "
                      f"{rate:,.0f}/s")
        self._s.flush()

    def finish(self) -> None:
        if self._s is not None:
            self._s.write("\n")
            self._s.flush()


def _check_out(out: Path, fmt: Format) -> None:
    if not out.parent.is_dir():
        raise ExportError(f"--out {out}: directory {out.parent} does not exist (create it)")
    if fmt == "datapackage" and out.exists():
        raise ExportError(f"--out {out} exists (a data package is a new folder: remove it "
                          "or choose another name)")
    if fmt != "datapackage" and out.is_dir():
        raise ExportError(f"--out {out} is a directory (give a file name)")


def export(cfg: Config, since: float, until: float, fmt: Format, out: Path,
           devices: Sequence[str] = (), domains: Sequence[str] = (),
           progress: TextIO | None = None,
           reader_factory: Callable[[], StoreReader] | None = None,
           sites: Sequence[str] = ()) -> ExportStats:
    """Write the export; on any failure nothing is left under ``out``. ``sites``: those
    sites' readings only (``--site``, at the centre); empty: every reading in the store."""
    since_ms, until_ms = int(since * 1000), int(until * 1000)
    if since_ms >= until_ms:
        raise ExportError("--since must be before --until (times are UTC; e.g. "
                          "--since -24h --until now)")
    doms = list(domains) or list(DOMAINS)
    _check_out(out, fmt)
    reader = reader_factory() if reader_factory else make_reader(cfg.store, cfg.export)
    t0 = time.monotonic()
    tmp = out.with_name(f".{out.name}.part-{os.getpid()}")
    try:
        reader.check()  # store down: one line, before anything is created
        if fmt == "datapackage":
            from .package import write_package

            tmp.mkdir()
            n, nd, seen = write_package(cfg, reader, tmp, since_ms, until_ms, devices, doms,
                                        Progress(progress, until_ms - since_ms), sites)
        else:
            writer: ReadingsWriter = CsvWriter(tmp) if fmt == "csv" else ParquetWriter(tmp)
            try:
                n, seen = stream_readings(cfg, reader, writer, since_ms, until_ms, devices,
                                          doms, Progress(progress, until_ms - since_ms), sites)
            finally:
                writer.close()
            nd = 0
        os.replace(tmp, out)
    except BaseException:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        raise
    finally:
        reader.close()
    return ExportStats(n, nd, tuple(sorted(seen)), time.monotonic() - t0)


def stream_readings(cfg: Config, reader: StoreReader, writer: ReadingsWriter, since_ms: int,
                    until_ms: int, devices: Sequence[str], domains: Sequence[str],
                    progress: Progress, sites: Sequence[str] = ()) -> tuple[int, set[str]]:
    """Every reading, chunk by chunk, into ``writer``; (count, devices seen)."""
    n = 0
    seen: set[str] = set()
    chunk_ms = cfg.export.chunk_s * 1000
    for end, rows in read_chunks(reader, since_ms, until_ms, chunk_ms, domains, devices,
                                 sites):
        writer.write(rows)
        n += len(rows)
        seen.update(r.device for r in rows)
        progress.update(end - since_ms, n)
    progress.finish()
    return n, seen


def default_progress() -> TextIO:
    return sys.stderr
