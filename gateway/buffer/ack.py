"""Acking lines of the buffer: which rows go, which lines are recorded in ``acked``.

Runs inside the caller's transaction, with its lock held (see
:mod:`gateway.buffer_schema` for the line ids and the ``acked`` table).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from gateway.buffer.schema import ROW_BASE, ROW_SHIFT, Batch, line_id

__all__ = ["ack_priority", "ack_rows"]


def ack_priority(db: sqlite3.Connection, ids: list[int], batch: Batch) -> int:
    """Delete lines of the ``lines`` table (priority points: gateway health, one row per
    point, drained ahead of the backlog); returns how many."""
    if len(ids) == len(batch.ids) and batch.last_id - batch.first_id + 1 == len(ids):
        return int(db.execute("DELETE FROM lines WHERE id BETWEEN ? AND ?",
                              (batch.first_id, batch.last_id)).rowcount)
    return int(db.executemany("DELETE FROM lines WHERE id = ?",
                              [(i,) for i in ids]).rowcount)


def ack_rows(db: sqlite3.Connection, ids: Sequence[int], any_acked: bool) -> tuple[int, int]:
    """Ack lines of ``msgs`` rows: (lines that were still waiting, change of ``acked`` rows).

    ``any_acked``: whether the ``acked`` table holds anything (skips a query if not).
    """
    per_row: dict[int, list[int]] = {}
    for i in ids:
        per_row.setdefault((i - ROW_BASE) >> ROW_SHIFT, []).append(i)
    lo, hi = min(per_row), max(per_row)
    totals = dict(db.execute("SELECT id, points FROM msgs WHERE id BETWEEN ? AND ?",
                             (lo, hi)).fetchall())
    done_before: dict[int, set[int]] = {}
    if any_acked:
        for (line,) in db.execute(
                "SELECT line_id FROM acked WHERE line_id BETWEEN ? AND ?",
                (line_id(lo, 0), line_id(hi + 1, 0) - 1)):
            done_before.setdefault((line - ROW_BASE) >> ROW_SHIFT, set()).add(line)
    full: list[int] = []
    partial: list[tuple[int]] = []
    count = 0
    acked_delta = 0
    for row, lines in per_row.items():
        total = totals.get(row)
        if total is None:
            continue  # acked already
        before = done_before.get(row, set())
        new = {i for i in lines if i not in before and i - line_id(row, 0) < total}
        count += len(new)
        if len(before) + len(new) >= total:
            full.append(row)
        else:
            partial.extend((i,) for i in new)
    if full:
        full.sort()
        if full[-1] - full[0] + 1 == len(full):
            db.execute("DELETE FROM msgs WHERE id BETWEEN ? AND ?", (full[0], full[-1]))
        else:
            db.executemany("DELETE FROM msgs WHERE id = ?", [(r,) for r in full])
        cleared = [r for r in full if r in done_before]
        for r in cleared:
            db.execute("DELETE FROM acked WHERE line_id BETWEEN ? AND ?",
                       (line_id(r, 0), line_id(r + 1, 0) - 1))
            acked_delta -= len(done_before[r])
    if partial:
        db.executemany("INSERT INTO acked VALUES (?)", partial)
        acked_delta += len(partial)
    return count, acked_delta
