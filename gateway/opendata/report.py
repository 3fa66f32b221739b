"""Reports for data teams: delivery per device and hour, the gap list, and the daily
data capture per device and quantity (EU Air Quality Directive style).

Daily data capture: an hour is *valid* for a quantity when it holds at least 75 %
of the samples expected at the device's configured interval (3600 / interval_s);
a day's capture is its valid hours over its hours in the range, and the day is
valid with at least 75 % valid hours (18 of 24). The Directive's data-capture
objective is 90 %: ``meets_90`` says whether a day reaches it.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from gateway.accounting.delivery import HOUR_S, Gap, HourRow, capture
from gateway.stores import StoreReader, read_chunks
from gateway.stores.centre import DeliveryRow

__all__ = ["CaptureRow", "daily_capture", "format_capture", "format_delivery",
           "format_gaps", "format_site_delivery"]

VALID_HOUR = 0.75
OBJECTIVE = 0.90
DAY_S = 24 * HOUR_S


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _table(head: Sequence[str], body: Iterable[Sequence[Any]]) -> str:
    rows = [tuple(str(c) for c in head), *(tuple(str(c) for c in r) for r in body)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    return "\n".join("  ".join(c.rjust(w) if c[:1].isdigit() or c[:1] == "-" else c.ljust(w)
                               for c, w in zip(r, widths, strict=True)).rstrip()
                     for r in rows)


def _csv(head: Sequence[str], body: Iterable[Sequence[Any]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(head)
    w.writerows(body)
    return buf.getvalue().rstrip("\n")


def _emit(fmt: str, head: Sequence[str], objs: list[dict[str, Any]],
          cell: Callable[[dict[str, Any]], Sequence[Any]], empty: str) -> str:
    if fmt == "json":
        return json.dumps(objs, indent=1)
    if fmt == "csv":
        return _csv(head, ([o[k] for k in head] for o in objs))
    return _table([h.upper() for h in head], (cell(o) for o in objs)) if objs else empty


_DELIVERY = ("device", "hour", "received", "accepted", "duplicates", "rejected", "missing",
             "capture")


def format_delivery(rows: list[HourRow], fmt: str) -> str:
    objs = [{"device": r.device, "hour": _iso(r.hour), "received": r.received,
             "accepted": r.accepted, "duplicates": r.duplicates, "rejected": r.rejected,
             "missing": r.missing, "capture": round(r.capture, 6)} for r in rows]
    return _emit(fmt, _DELIVERY, objs,
                 lambda o: [*(o[k] for k in _DELIVERY[:-1]), f"{o['capture']:.1%}"],
                 "no delivery records in this range")


_GAPS = ("device", "start", "end", "boot", "seq_from", "seq_to", "messages", "cause")


def format_gaps(gaps: list[Gap], fmt: str) -> str:
    objs = [{"device": g.device, "start": _iso(g.start), "end": _iso(g.end), "boot": g.boot,
             "seq_from": None if g.lo < 0 else g.lo, "seq_to": None if g.hi < 0 else g.hi,
             "messages": 0 if g.lo < 0 else g.hi - g.lo + 1, "cause": g.cause} for g in gaps]
    return _emit(fmt, _GAPS, objs,
                 lambda o: ["-" if o[k] is None else o[k] for k in _GAPS],
                 "no gaps in this range")


@dataclass(frozen=True)
class CaptureRow:
    device: str
    day: str
    domain: str
    quantity: str
    interval_s: int
    hours: int
    valid_hours: int
    site: str = ""

    @property
    def capture(self) -> float:
        return self.valid_hours / self.hours if self.hours else 0.0


def daily_capture(reader: StoreReader, since: float, until: float, domains: Sequence[str],
                  devices: Sequence[str], interval_of: Callable[[str], int],
                  chunk_s: int, sites: Sequence[str] = (),
                  site_interval: Callable[[str, str], int] | None = None) -> list[CaptureRow]:
    """Count samples per (site, device, quantity, hour) from the store, then judge each
    hour. ``sites``: those sites only; ``site_interval(site, device)`` then replaces
    ``interval_of(device)`` (device ids are unique within a site only)."""
    start = int(since // HOUR_S) * HOUR_S
    end = int(-(-until // HOUR_S)) * HOUR_S
    per_hour: Counter[tuple[str, str, str, str, int]] = Counter()
    for _, rows in read_chunks(reader, start * 1000, end * 1000, chunk_s * 1000, domains,
                               devices, sites):
        per_hour.update((r.site, r.device, r.domain, r.quantity,
                         r.time_ms // 1000 // HOUR_S * HOUR_S) for r in rows)
    series = sorted({k[:4] for k in per_hour})
    out: list[CaptureRow] = []
    for site, dev, dom, q in series:
        interval = site_interval(site, dev) if site_interval else interval_of(dev)
        need = VALID_HOUR * HOUR_S / interval
        for day in range(start - start % DAY_S, end, DAY_S):
            hours = [h for h in range(day, day + DAY_S, HOUR_S) if start <= h < end]
            if not hours:
                continue
            valid = sum(1 for h in hours if per_hour.get((site, dev, dom, q, h), 0) >= need)
            out.append(CaptureRow(dev, _iso(day)[:10], dom, q, interval, len(hours), valid,
                                  site))
    return out


_CAPTURE = ("device", "day", "domain", "quantity", "interval_s", "hours", "valid_hours",
            "capture", "day_valid", "meets_90")


def format_capture(rows: list[CaptureRow], fmt: str, with_site: bool = False) -> str:
    """``with_site`` (reports across sites): every row starts with its ``site``."""
    lead = {"site": None} if with_site else {}
    objs = [{**{k: r.site for k in lead}, "device": r.device, "day": r.day,
             "domain": r.domain, "quantity": r.quantity,
             "interval_s": r.interval_s, "hours": r.hours, "valid_hours": r.valid_hours,
             "capture": round(r.capture, 6), "day_valid": r.capture >= VALID_HOUR,
             "meets_90": r.capture >= OBJECTIVE} for r in rows]
    head = (*lead, *_CAPTURE)
    return _emit(fmt, head, objs,
                 lambda o: [*(o[k] for k in head[:len(lead) + 7]), f"{o['capture']:.1%}",
                            "yes" if o["day_valid"] else "no",
                            "yes" if o["meets_90"] else "NO"],
                 "no readings in this range")


def format_site_delivery(rows: list[DeliveryRow], fmt: str) -> str:
    """The store's ``delivery`` points (reports across sites): the delivery report's
    columns, after ``site``."""
    objs = [{"site": r.site, "device": r.device, "hour": _iso(r.hour_ms / 1000),
             "received": r.received, "accepted": r.accepted, "duplicates": r.duplicates,
             "rejected": r.rejected, "missing": r.missing,
             "capture": round(capture(r.accepted, r.rejected, r.missing), 6)} for r in rows]
    head = ("site", *_DELIVERY)
    return _emit(fmt, head, objs,
                 lambda o: [*(o[k] for k in head[:-1]), f"{o['capture']:.1%}"],
                 "no delivery records in this range")
