"""A process opening an SQLite file that another one is creating waits instead of failing
(issue 15: "database is locked" when two boards were flashed in parallel). SQLite answers
`PRAGMA journal_mode=WAL` at once, busy timeout or not, while another connection holds
the write lock of a file still in rollback mode: exactly a concurrent first open."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

HOLD_S = 0.6
HOLDER = """
import sqlite3, sys, time
a = sqlite3.connect(sys.argv[1], isolation_level=None)
a.execute('BEGIN IMMEDIATE')
a.execute('CREATE TABLE IF NOT EXISTS other_process(x)')
print('held', flush=True)
time.sleep(float(sys.argv[2]))
a.execute('COMMIT')
"""


def _inventory(path: Path) -> None:
    from devices.inventory import Inventory

    Inventory(path).close()


def _lastseen(path: Path) -> None:
    from gateway.accounting.lastseen import LastSeen

    LastSeen(path).close()


def _store(path: Path) -> None:
    from gateway.stores.sqlite import SQLiteStore
    from protocols.config import StoreSection

    SQLiteStore(StoreSection(path=path))._open().close()


def _buffer(path: Path) -> None:
    from gateway.buffer.core import DurableBuffer

    DurableBuffer(path, 64 << 20).close()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("opener", [_inventory, _lastseen, _store, _buffer],
                         ids=["inventory", "lastseen", "store", "buffer"])
def test_first_open_waits_for_a_process_creating_the_file(
        tmp_path: Path, opener: Callable[[Path], None]) -> None:
    path = tmp_path / "shared.sqlite"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(path), str(HOLD_S)],
                              stdout=subprocess.PIPE, start_new_session=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"held\n"
        t0 = time.monotonic()
        opener(path)  # before: sqlite3.OperationalError "database is locked" at once
        assert time.monotonic() - t0 < HOLD_S + 10
    finally:
        assert holder.wait(10) == 0


def test_open_shared_gives_up_after_its_timeout(tmp_path: Path) -> None:
    import sqlite3

    from protocols.sqlitefile import open_shared

    path = tmp_path / "held.sqlite"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(path), "3"],
                              stdout=subprocess.PIPE, start_new_session=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"held\n"
        t0 = time.monotonic()
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            open_shared(path, timeout_s=0.5)
        assert 0.4 < time.monotonic() - t0 < 2.5
    finally:
        assert holder.wait(10) == 0
