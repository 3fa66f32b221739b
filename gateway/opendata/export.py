"""``livinglab export``: readings from the store in long format, streamed in time chunks,
written under a temporary name and renamed to ``--out`` only once complete."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TextIO

from gateway.stores import StoreReader, make_reader
from protocols import DOMAINS
from protocols.config import Config

from .errors import ExportError
from .stream import Progress, stream_readings
from .writers import CsvWriter, ParquetWriter, ReadingsWriter

__all__ = ["ExportStats", "Format", "Progress", "export"]

Format = Literal["csv", "parquet", "datapackage"]


@dataclass(frozen=True)
class ExportStats:
    readings: int
    delivery_rows: int
    devices: tuple[str, ...]
    seconds: float


def _check_out(out: Path, fmt: Format) -> None:
    if not out.parent.is_dir():
        raise ExportError(f"--out {out}: directory {out.parent} does not exist (create it)")
    if fmt == "datapackage" and out.exists():
        raise ExportError(f"--out {out} exists (a data package is a new folder: remove it "
                          "or choose another name)")
    if fmt != "datapackage" and out.is_dir():
        raise ExportError(f"--out {out} is a directory (give a file name)")


def _temporary(out: Path, directory: bool) -> Path:
    """A fresh, unpredictable name next to ``out`` (same file system: the final rename is
    atomic), created exclusively: nobody can plant a symlink under a name guessed from
    the pid and have the export write through it."""
    prefix = f".{out.name}.part-"
    if directory:
        return Path(tempfile.mkdtemp(prefix=prefix, dir=out.parent))
    fd, name = tempfile.mkstemp(prefix=prefix, dir=out.parent)
    os.close(fd)
    return Path(name)


def _publishable(tmp: Path) -> None:
    """mkstemp/mkdtemp make 0600/0700; the finished export gets the umask's usual mode."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, (0o777 if tmp.is_dir() else 0o666) & ~umask)


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
    tmp: Path | None = None
    try:
        reader.check()  # store down: one line, before anything is created
        tmp = _temporary(out, fmt == "datapackage")
        if fmt == "datapackage":
            from .package import write_package

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
        _publishable(tmp)
        os.replace(tmp, out)
    except BaseException:
        if tmp is not None and tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp is not None:
            tmp.unlink(missing_ok=True)
        raise
    finally:
        reader.close()
    return ExportStats(n, nd, tuple(sorted(seen)), time.monotonic() - t0)


def default_progress() -> TextIO:
    return sys.stderr
