"""Reader for the embedded SQLite store (``readings`` table, see ``sqlite``)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

from protocols.config import StoreSection

from .reading import Reading, StoreUnreadable

__all__ = ["SQLiteReader"]


class SQLiteReader:
    def __init__(self, cfg: StoreSection) -> None:
        self._path = Path(cfg.path)
        self._db: sqlite3.Connection | None = None

    def check(self) -> None:
        if not self._path.exists():
            raise StoreUnreadable(f"readings database {self._path} does not exist "
                                  "(check [store] path; the gateway creates it)")
        try:
            db = sqlite3.connect(f"file:{self._path}?mode=ro", uri=True, timeout=30.0)
            db.execute("SELECT 1 FROM readings LIMIT 1").fetchall()
        except sqlite3.Error as exc:
            raise StoreUnreadable(f"readings database {self._path}: {exc} "
                                  "(check [store] path)") from None
        self._db = db

    def window(self, since_ms: int, until_ms: int, domains: Sequence[str],
               devices: Sequence[str]) -> list[Reading]:
        if self._db is None:
            self.check()
        assert self._db is not None
        # `+measurement`: keeps SQLite on the time index; on the UNIQUE index (measurement
        # first) every window would scan the whole measurement, O(rows x windows)
        sql = ("SELECT time_ms, site, device, sensor, measurement, field, value FROM readings "
               "WHERE time_ms >= ? AND time_ms < ? AND +measurement IN "
               f"({','.join('?' * len(domains))})")
        args: list[object] = [since_ms, until_ms, *domains]
        if devices:
            sql += f" AND +device IN ({','.join('?' * len(devices))})"
            args.extend(devices)
        try:
            return [Reading._make(r) for r in self._db.execute(sql, args)]
        except sqlite3.Error as exc:
            raise StoreUnreadable(f"readings database {self._path}: {exc}") from None

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
