"""``report delivery|capture`` and ``export`` with ``--site``: from any config with a
store (no ``site`` in it), the store alone; rows gain ``site``; the open-data package's
stations from ``station`` points (no inventory at the centre)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from protocols.config import parse_config
from tests.centre.data import HOUR, City, build, write


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gateway.cli", *args], capture_output=True,
                          text=True, timeout=120)


@pytest.fixture(scope="module")
def centre(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, City]:
    """A centre's config: a store and nothing else (no site, no inventory)."""
    base = tmp_path_factory.mktemp("centre")
    store = base / "city.sqlite"
    cfg = base / "centre.toml"
    cfg.write_text(f'[store]\nkind = "sqlite"\npath = "{store}"\n[gateway]\n'
                   f'data_dir = "{base / "var"}"\n', encoding="utf-8")
    city = build()
    write(parse_config({"store": {"kind": "sqlite", "path": str(store)}}, base, env={},
                       need_site=False).store, city.points)
    return cfg, city


def test_report_delivery_across_sites(centre: tuple[Path, City]) -> None:
    cfg, city = centre
    t0 = city.t0
    r = cli("report", "delivery", "--config", str(cfg), "--site", "alpha", "--site", "beta",
            "--since", iso(t0), "--until", iso(t0 + 2 * HOUR), "--format", "json")
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert rows == [
        {"site": "alpha", "device": "a1", "hour": iso(t0), "received": 59, "accepted": 58,
         "duplicates": 1, "rejected": 0, "missing": 2, "capture": round(58 / 60, 6)},
        {"site": "alpha", "device": "a1", "hour": iso(t0 + HOUR), "received": 61,
         "accepted": 60, "duplicates": 1, "rejected": 0, "missing": 0, "capture": 1.0},
        {"site": "beta", "device": "b1", "hour": iso(t0), "received": 60, "accepted": 59,
         "duplicates": 0, "rejected": 1, "missing": 0, "capture": round(59 / 60, 6)}]
    r = cli("report", "delivery", "--config", str(cfg), "--site", "beta", "--since", iso(t0),
            "--until", iso(t0 + 2 * HOUR), "--format", "csv")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0].startswith("site,device,hour,")
    assert [ln.split(",")[0] for ln in r.stdout.splitlines()[1:]] == ["beta"]


def test_report_capture_across_sites(centre: tuple[Path, City]) -> None:
    cfg, city = centre
    t0 = city.t0
    r = cli("report", "capture", "--config", str(cfg), "--site", "alpha", "--since", iso(t0),
            "--until", iso(t0 + HOUR), "--format", "json", "--domain", "air")
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert {(x["site"], x["device"], x["quantity"]) for x in rows} == {
        ("alpha", d, q) for d in ("a1", "a2") for q in ("co2", "temperature")}
    # one reading a minute for the whole hour, at the device's interval (60 s)
    assert all(x["interval_s"] == 60 and x["valid_hours"] == 1 for x in rows), rows


def test_export_across_sites_csv(centre: tuple[Path, City], tmp_path: Path) -> None:
    cfg, city = centre
    t0 = city.t0
    out = tmp_path / "beta.csv"
    r = cli("export", "--config", str(cfg), "--site", "beta", "--since", iso(t0 - HOUR),
            "--until", iso(t0 + 3 * HOUR), "--format", "csv", "--out", str(out))
    assert r.returncode == 0, r.stderr
    with open(out, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    want = [x for x in city.readings if x.site == "beta"]
    assert len(rows) == len(want) == 180
    assert {x["site"] for x in rows} == {"beta"}


def test_datapackage_stations_from_station_points(centre: tuple[Path, City],
                                                  tmp_path: Path) -> None:
    cfg, city = centre
    t0 = city.t0
    out = tmp_path / "pkg"
    r = cli("export", "--config", str(cfg), "--site", "alpha", "--site", "beta", "--since",
            iso(t0), "--until", iso(t0 + 2 * HOUR), "--format", "datapackage", "--out",
            str(out))
    assert r.returncode == 0, r.stderr
    geo = json.loads((out / "stations.geojson").read_text())
    feats = {f["id"]: f for f in geo["features"]}
    assert set(feats) == {"alpha.a1", "beta.b1"}  # a9 sent nothing in the range
    a1 = feats["alpha.a1"]
    assert a1["geometry"] == {"type": "Point", "coordinates": [16.875, 41.125]}
    assert a1["properties"] | {"since": ""} == {
        "site": "alpha", "device": "a1", "deployment": 2, "since": "", "room": "Hall",
        "zone": "", "note": "", "board": "pico_w", "sensors": ["scd41", "bh1750"],
        "retired": False}
    assert feats["beta.b1"]["geometry"] is None and feats["beta.b1"]["properties"]["retired"]
    deps = (out / "deployments.csv").read_text().splitlines()
    assert deps[1].startswith(f"a1,1,{iso(t0 - 24 * HOUR)[:-1]}.000Z,"
                              f"{iso(t0 - HOUR)[:-1]}.000Z,41.1,16.8,Lab 2,north,")
    delivery = (out / "delivery.csv").read_text().splitlines()
    assert len(delivery) == 1 + 3
    desc = json.loads((out / "datapackage.json").read_text())
    assert desc["name"] == "livinglab-alpha-beta"
    r = subprocess.run([str(Path(sys.executable).parent / "frictionless"), "validate",
                        str(out / "datapackage.json")], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]


def test_site_is_needed_without_site_option(centre: tuple[Path, City], tmp_path: Path
                                           ) -> None:
    cfg, city = centre
    r = cli("report", "delivery", "--config", str(cfg), "--format", "json")
    assert r.returncode != 0
    assert r.stderr.strip().splitlines()[-1].startswith("livinglab: ")
    assert "site" in r.stderr and "Traceback" not in r.stderr
    r = cli("export", "--config", str(cfg), "--site", "Not A Site", "--since", "-1h",
            "--until", "now", "--format", "csv", "--out", str(tmp_path / "x.csv"))
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith("livinglab: --site")
    assert not (tmp_path / "x.csv").exists()
