"""The SQLite reader's ``readings()`` with a narrowing filter reads through the series
(UNIQUE) index, not the time index, and answers exactly the rows of the unfiltered
window that match: same rows, same order, whichever filters are given."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from gateway.stores.reading import Reading
from gateway.stores.sqlite_reader import SQLiteReader
from protocols.config import parse_config
from tests.centre.data import HOUR, MIN, City, build, write


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, City]:
    base = tmp_path_factory.mktemp("sqlite-series")
    cfg = parse_config({"store": {"kind": "sqlite", "path": str(base / "r.sqlite")}}, base,
                       env={}, need_site=False)
    c = build(20)
    write(cfg.store, c.points)
    return cfg, c


@pytest.fixture
def reader(city: tuple[Any, City]) -> Iterator[SQLiteReader]:
    r = SQLiteReader(city[0].store, chunk_s=1800)  # several chunks per window
    try:
        yield r
    finally:
        r.close()


def _plans(r: SQLiteReader, monkeypatch: pytest.MonkeyPatch, path: str,
           **filters: Sequence[str]) -> tuple[list[Reading], list[str]]:
    """The rows of a window and the query plans of the statements that read it."""
    seen: list[tuple[str, tuple[Any, ...]]] = []
    stream = r._stream

    def spy(sql: str, args: Sequence[Any] = ()) -> Iterator[tuple[Any, ...]]:
        seen.append((sql, tuple(args)))
        return stream(sql, args)
    monkeypatch.setattr(r, "_stream", spy)
    t0 = r._conn().execute("SELECT min(time_ms) FROM readings WHERE measurement = 'air'"
                           ).fetchone()[0]
    rows = list(r.readings(t0 + 10 * MIN, t0 + 2 * HOUR + 7 * MIN, **filters))
    monkeypatch.undo()
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    plans = [" / ".join(p[3] for p in con.execute("EXPLAIN QUERY PLAN " + sql, args))
             for sql, args in seen if "time_ms >=" in sql]
    con.close()
    return rows, plans


@pytest.mark.parametrize("filters", [
    {"sites": ["alpha"], "devices": ["a1"], "domains": ["air"], "quantities": ["co2"]},
    {"devices": ["a1"], "quantities": ["co2"]},
    {"devices": ["a1", "x7"]},
    {"quantities": ["temperature"]},
    {"sites": ["alpha"]},
])
def test_filtered_window_reads_the_series_index(reader: SQLiteReader, city: tuple[Any, City],
                                                monkeypatch: pytest.MonkeyPatch,
                                                filters: dict[str, list[str]]) -> None:
    path = str(city[0].store.path)
    everything, plain = _plans(reader, monkeypatch, path)
    assert plain and all("readings_time" in p for p in plain), plain
    part, plans = _plans(reader, monkeypatch, path, **filters)
    assert plans and all("sqlite_autoindex_readings_1" in p and "time_ms>?" in p
                         and "readings_time" not in p for p in plans), plans

    def keep(r: Reading) -> bool:
        return all(getattr(r, {"sites": "site", "devices": "device", "domains": "domain",
                               "quantities": "quantity"}[k]) in v for k, v in filters.items())
    want = [r for r in everything if keep(r)]
    assert part == want
    assert want and len(want) < len(everything)


def test_series_path_query_count_does_not_grow_with_devices(reader: SQLiteReader) -> None:
    """Sites, then the series walk, then one statement per chunk: never per device."""
    devices = sorted({d.device for d in reader.devices()})
    assert len(devices) > 20
    t0 = reader._conn().execute("SELECT min(time_ms) FROM readings WHERE measurement = 'air'"
                                ).fetchone()[0]
    counts = []
    for some in (devices[:1], devices):
        q0 = reader.queries()
        n = sum(1 for _ in reader.readings(t0 // HOUR * HOUR, t0 // HOUR * HOUR + HOUR,
                                           devices=some))
        assert n > 0
        counts.append(reader.queries() - q0)
    # the measurements, the sites, the series walk, then two 30-min chunks
    assert counts[0] == counts[1] == 1 + 1 + 1 + 2
