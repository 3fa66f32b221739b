"""Read-only access to the delivery accounting in a gateway's ``buffer.sqlite``.

For ``livinglab report`` and the console: opens the file read-only (the gateway may
be writing it; WAL lets both run) and returns plain values; an absent file or a
file from before the accounting reads as empty.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from pathlib import Path

from gateway.accounting.delivery import Gap, HourRow, hour_of
from protocols.sqlitefile import open_readonly

__all__ = ["read_gaps", "read_hours"]


def _open_ro(path: Path) -> sqlite3.Connection | None:
    db = open_readonly(path)
    if db is None:
        return None
    has = db.execute("SELECT count(*) FROM sqlite_master WHERE name = 'delivery_hours'")
    if not has.fetchone()[0]:
        db.close()
        return None
    return db


def _where(since: float, until: float, devices: Iterable[str], col: str
           ) -> tuple[str, list[object]]:
    devs = list(devices)
    sql = f" WHERE {col} >= ? AND {col} < ?"
    args: list[object] = [since, until]
    if devs:
        sql += f" AND device IN ({','.join('?' * len(devs))})"
        args.extend(devs)
    return sql, args


def read_hours(path: Path, since: float, until: float, devices: Iterable[str] = ()
               ) -> list[HourRow]:
    """The committed hour rows of the buffer file at ``path`` (read-only), by device, hour."""
    db = _open_ro(path)
    if db is None:
        return []
    try:
        where, args = _where(hour_of(since), until, devices, "hour")
        rows = db.execute("SELECT device, hour, received, accepted, duplicates, rejected, "
                          "missing FROM delivery_hours" + where + " ORDER BY device, hour",
                          args).fetchall()
    finally:
        db.close()
    return [HourRow(r[0], int(r[1]), *(int(x) for x in r[2:])) for r in rows]


def read_gaps(path: Path, since: float, until: float, devices: Iterable[str] = ()
              ) -> list[Gap]:
    """Gaps (missing ranges, rejections, reboots) ending in [since, until), by device, time."""
    db = _open_ro(path)
    if db is None:
        return []
    try:
        where, args = _where(since, until, devices, "end")
        rows = db.execute("SELECT device, boot, lo, hi, start, end, cause FROM delivery_gaps"
                          + where + " ORDER BY device, start, boot, lo", args).fetchall()
    finally:
        db.close()
    return [Gap(r[0], int(r[1]), int(r[2]), int(r[3]), float(r[4]), float(r[5]), r[6])
            for r in rows]
