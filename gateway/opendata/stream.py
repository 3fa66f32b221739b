"""Readings from the store into a writer, chunk by chunk, with a progress bar.

Shared by the flat exports (``export``) and the data package (``package``), so
neither imports the other.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TextIO

from gateway.stores import StoreReader, read_chunks
from protocols.config import Config

from .writers import ReadingsWriter

__all__ = ["Progress", "stream_readings"]


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



def stream_readings(cfg: Config, reader: StoreReader, writer: ReadingsWriter, since_ms: int,
                    until_ms: int, devices: Sequence[str], domains: Sequence[str],
                    progress: Progress, sites: Sequence[str] = ()) -> tuple[int, set[str]]:
    """Every reading, chunk by chunk, into ``writer``; (count, devices seen); ``sites``:
    those sites only (empty: all)."""
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
