"""Opening an SQLite file several processes share (inventory, buffer, last-seen, store),
for writing (:func:`open_shared`) or for reading only (:func:`open_readonly`).

Why a helper: ``PRAGMA journal_mode=WAL`` needs an exclusive lock and SQLite may answer
it with "database is locked" at once, without calling the busy handler (two processes
opening a *new* file at the same moment: two boards flashed in parallel, the gateway
and a CLI). Every caller did ``connect(timeout=...)`` and then that pragma, so the
timeout never covered the one statement that races. :func:`open_shared` reads the mode
first (a file already in WAL needs no lock) and retries the switch until the same
timeout has passed.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Literal

__all__ = ["open_readonly", "open_shared"]


def _busy(exc: sqlite3.OperationalError) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def open_shared(path: Path | str, timeout_s: float = 30.0, *,
                isolation_level: Literal["DEFERRED", "EXCLUSIVE", "IMMEDIATE"] | None = None,
                check_same_thread: bool = True,
                page_size: int = 0) -> sqlite3.Connection:
    """A connection to ``path`` in WAL mode, waiting up to ``timeout_s`` for other
    processes opening or creating the same file. ``page_size``: for a new file only
    (SQLite ignores it once the file has pages). Raises sqlite3 errors as they come
    (still "database is locked" after ``timeout_s``)."""
    con = sqlite3.connect(path, timeout=timeout_s, isolation_level=isolation_level,
                          check_same_thread=check_same_thread)
    deadline = time.monotonic() + timeout_s
    delay = 0.002
    try:
        while True:
            try:
                if page_size:
                    con.execute(f"PRAGMA page_size={int(page_size)}")
                mode = str(con.execute("PRAGMA journal_mode").fetchone()[0]).lower()
                if mode != "wal":
                    con.execute("PRAGMA journal_mode=WAL").fetchone()
                return con
            except sqlite3.OperationalError as exc:
                if not _busy(exc) or time.monotonic() >= deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 0.1)
    except BaseException:
        con.close()
        raise


def open_readonly(path: Path | str, timeout_s: float = 30.0, *,
                  check_same_thread: bool = True) -> sqlite3.Connection | None:
    """A connection that cannot write (``mode=ro``: a reader never creates, migrates or
    checkpoints another process's file), or None when the file does not exist yet.
    Raises sqlite3 errors as they come (a damaged or unreadable file)."""
    p = Path(path)
    if not p.exists():
        return None
    return sqlite3.connect(f"file:{p}?mode=ro", uri=True, timeout=timeout_s,
                           check_same_thread=check_same_thread)
