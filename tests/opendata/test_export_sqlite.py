"""Export from the embedded SQLite store: every format, round trips, failures."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from devices.inventory import Inventory
from gateway.opendata import ExportError, export
from gateway.opendata.timespec import parse_time
from gateway.stores import Reading
from protocols.config import Config, parse_config
from protocols.lineprotocol import make_point

from .helpers import SITE, T0_MS, known_points, read_csv, read_parquet, same, write

SINCE = T0_MS / 1000 - 60
UNTIL = T0_MS / 1000 + 3 * 3600


@pytest.fixture(scope="module")
def cfg(tmp_path_factory: pytest.TempPathFactory) -> Config:
    base = tmp_path_factory.mktemp("sq")
    c = parse_config({"site": SITE, "gateway": {"data_dir": str(base / "var")},
                      "store": {"kind": "sqlite", "path": str(base / "r.sqlite")},
                      "export": {"chunk_s": 900, "licence": "CC0-1.0",
                                 "licence_title": "CC0", "licence_url":
                                 "https://creativecommons.org/publicdomain/zero/1.0/"}},
                     base, env={})
    points, _ = known_points()
    for dev, missing in (("air-00", 0.0), ("air-01", 3.0)):
        points.append(make_point("delivery", {"site": SITE, "device": dev},
                                 {"received": 30.0, "accepted": 28.0, "duplicates": 1.0,
                                  "rejected": 1.0, "missing": missing}, T0_MS))
    write(c.store, points)
    with Inventory.in_data_dir(c.gateway.data_dir) as inv:
        inv.set_meta("air-00", {"lat": 52.0, "lon": 4.3, "room": "2.14"}, now=T0_MS / 1000)
        inv.set_meta("air-00", {"note": "window"}, now=T0_MS / 1000 + 10)
        inv.set_meta("air-00", {"lat": 52.01, "lon": 4.36}, now=T0_MS / 1000 + 3600)
    return c


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_round_trip(cfg: Config, tmp_path: Path, fmt: str) -> None:
    _, want = known_points()
    out = tmp_path / f"x.{fmt}"
    stats = export(cfg, SINCE, UNTIL, fmt, out)  # type: ignore[arg-type]
    got = read_csv(out) if fmt == "csv" else read_parquet(out)
    same(got, want)
    assert stats.readings == len(want)
    assert [p.name for p in tmp_path.iterdir()] == [out.name]


def test_filters(cfg: Config, tmp_path: Path) -> None:
    _, want = known_points()
    out = tmp_path / "x.csv"
    export(cfg, SINCE, UNTIL, "csv", out, devices=["air-01"], domains=["light"])
    same(read_csv(out), [r for r in want if r[2] == "air-01" and r[4] == "light"])


def test_device_health_exports_numbers_only(cfg: Config, tmp_path: Path) -> None:
    """The device point's string field fw (text_fields in SQLite) is never a reading."""
    out = tmp_path / "x.csv"
    export(cfg, SINCE, UNTIL, "csv", out, domains=["device"])
    assert {(r[2], r[5]) for r in read_csv(out)} == {
        (f"air-{d:02d}", q) for d in range(3) for q in ("online", "rssi")}


def test_datapackage_validates_and_has_locations(cfg: Config, tmp_path: Path) -> None:
    _, want = known_points()
    out = tmp_path / "pkg"
    export(cfg, SINCE, UNTIL, "datapackage", out)
    same(read_csv(out / "readings.csv"), want)
    desc = json.loads((out / "datapackage.json").read_text())
    assert desc["licenses"][0]["name"] == "CC0-1.0"
    assert {q["ucum"] for q in desc["quantities"]} >= {"[ppm]", "Cel", "lx"}
    geo = json.loads((out / "stations.geojson").read_text())
    feats = {f["id"]: f for f in geo["features"]}
    assert feats["air-00"]["geometry"] == {"type": "Point", "coordinates": [4.36, 52.01]}
    assert feats["air-00"]["properties"]["deployment"] == 2
    assert feats["air-01"]["geometry"] is None
    assert (out / "delivery.csv").read_text().splitlines()[1:] == [
        "2025-11-25T10:00:00Z,lab,air-00,30,28,1,1,0,0.965517",
        "2025-11-25T10:00:00Z,lab,air-01,30,28,1,1,3,0.875000"]
    deps = (out / "deployments.csv").read_text().splitlines()
    assert deps[1].startswith("air-00,1,2025-11-25T10:00:00.000Z,2025-11-25T11:00:00.000Z,")
    assert deps[1].endswith(",2.14,,window")
    assert deps[2].startswith("air-00,2,2025-11-25T11:00:00.000Z,,52.01,4.36,")
    r = subprocess.run([str(Path(sys.executable).parent / "frictionless"), "validate",
                        str(out / "datapackage.json")], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]


def test_bad_range_and_store_down_leave_nothing(cfg: Config, tmp_path: Path) -> None:
    out = tmp_path / "x.csv"
    with pytest.raises(ExportError, match="--since must be before --until"):
        export(cfg, UNTIL, SINCE, "csv", out)
    gone = parse_config({"site": SITE, "store": {"kind": "sqlite",
                                                 "path": str(tmp_path / "nope.sqlite")}},
                        tmp_path, env={})
    with pytest.raises(Exception, match="does not exist"):
        export(gone, SINCE, UNTIL, "parquet", out)
    down = parse_config({"site": SITE, "store": {"kind": "influxdb1",
                                                 "url": "http://127.0.0.1:9"}}, tmp_path,
                        env={})
    with pytest.raises(Exception, match="unreachable"):
        export(down, SINCE, UNTIL, "datapackage", tmp_path / "pkg")
    assert list(tmp_path.iterdir()) == []


def test_failure_midway_removes_the_partial_file(cfg: Config, tmp_path: Path) -> None:
    from gateway.stores import make_reader

    class Dies:
        def __init__(self) -> None:
            self.inner = make_reader(cfg.store)
            self.calls = 0

        def check(self) -> None:
            self.inner.check()

        def window(self, since_ms: int, until_ms: int, domains: Sequence[str],
                   devices: Sequence[str], sites: Sequence[str] = ()) -> list[Reading]:
            self.calls += 1
            if self.calls == 3:
                raise ExportError("store went away")
            return self.inner.window(since_ms, until_ms, domains, devices, sites)

        def close(self) -> None:
            self.inner.close()

    with pytest.raises(ExportError):
        export(cfg, SINCE, UNTIL, "csv", tmp_path / "x.csv",
               reader_factory=Dies)
    assert list(tmp_path.iterdir()) == []


def test_time_spec() -> None:
    assert parse_time("2025-11-25T10:00:00Z", 0) == T0_MS / 1000
    assert parse_time("2025-11-25T11:00:00+01:00", 0) == T0_MS / 1000
    assert parse_time("-2h", 10_000) == 2800
    with pytest.raises(ExportError, match="not RFC 3339"):
        parse_time("yesterday", 0)


def test_docs_snippets_read_the_exports(cfg: Config, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Every Python block of docs/data.md runs against real exports."""
    import re

    export(cfg, SINCE, UNTIL, "parquet", tmp_path / "week.parquet")
    export(cfg, SINCE, UNTIL, "datapackage", tmp_path / "lab-2026")
    text = (Path(__file__).parents[2] / "docs" / "data.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert len(blocks) >= 4
    monkeypatch.chdir(tmp_path)
    ns: dict[str, object] = {}  # one session, as a reader would paste them
    for block in blocks:
        exec(compile(block, "docs/data.md", "exec"), ns)
    states = set(ns["hours"]["state"])  # type: ignore[index]
    assert states == {"delivered, no pm2_5"}, states  # the fixture has no PM
    placed = ns["r"]
    assert set(placed[placed.device == "air-00"].deployment) == {1, 2}  # type: ignore
