"""Reading the store back: one reader per store kind, next to its writer.

A reader answers one question, generically (export, reports, scripts): every
reading of some domains (measurements) and devices in ``[since_ms, until_ms)``,
as :class:`Reading` rows sorted by time. :func:`read_chunks` walks a long range
in fixed time windows, so memory is bounded by what one window holds, never by
the size of the range.

Errors: :class:`StoreUnreadable` (store down, refused, not there) with a message
that names the fix; nothing else leaves a reader.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import NamedTuple, Protocol

from .base import StoreError

__all__ = ["Reading", "StoreReader", "StoreUnreadable", "read_chunks",
           "sort_key", "split_metric"]


class Reading(NamedTuple):
    """One value: ``time_ms`` (Unix ms, UTC), tags, domain = measurement, quantity = field."""

    time_ms: int
    site: str
    device: str
    sensor: str
    domain: str
    quantity: str
    value: float


class StoreUnreadable(StoreError):
    """The store cannot be read (down, refused, missing); the message names the fix."""


class StoreReader(Protocol):
    def check(self) -> None:
        """Raise :class:`StoreUnreadable` unless the store answers."""

    def window(self, since_ms: int, until_ms: int, domains: Sequence[str],
               devices: Sequence[str], sites: Sequence[str] = ()) -> list[Reading]:
        """Every reading in ``[since_ms, until_ms)`` of ``domains`` (and ``devices``,
        ``sites``: all when empty), in any order."""

    def close(self) -> None: ...


def sort_key(r: Reading) -> tuple[int, str, str, str, str]:
    return (r.time_ms, r.device, r.sensor, r.domain, r.quantity)


def read_chunks(reader: StoreReader, since_ms: int, until_ms: int, chunk_ms: int,
                domains: Sequence[str], devices: Sequence[str] = (), sites: Sequence[str] = ()
                ) -> Iterator[tuple[int, list[Reading]]]:
    """(window end, its readings sorted by time) for consecutive windows of ``chunk_ms``,
    aligned to multiples of ``chunk_ms`` so a whole ``delivery`` hour is in one window."""
    start = since_ms
    while start < until_ms:
        end = min(until_ms, (start // chunk_ms + 1) * chunk_ms)
        rows = (reader.window(start, end, domains, devices, sites) if sites
                else reader.window(start, end, domains, devices))
        rows.sort(key=sort_key)
        yield end, rows
        start = end


def split_metric(name: str, domains: Sequence[str]) -> tuple[str, str] | None:
    """``air_pm2_5`` -> (``air``, ``pm2_5``): VictoriaMetrics names a series
    ``{measurement}_{field}``; domains and quantities may hold ``_`` too, so the
    longest known domain that prefixes the name wins."""
    for d in sorted(domains, key=len, reverse=True):
        if name.startswith(d + "_") and len(name) > len(d) + 1:
            return d, name[len(d) + 1:]
    return None
