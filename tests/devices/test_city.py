"""``livinglab city simulate``: the load model's messages pass the gateway's own validation,
and a city of real brokers and gateways lands readings for every site in one store."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from devices.city import site_config_text, store_table
from devices.city_model import OFFLINE, Walk, plan_city, status_payload, telemetry_payload
from protocols import validate_telemetry
from protocols.config import load_config, parse_config
from protocols.ids import ID_RE
from protocols.validate_status import validate_status
from tests.servers import Influxd, wait_for
from tests.servers_centre import VMCluster

T0 = 1_795_351_934.0


def test_plan_ids_are_valid_and_unique() -> None:
    plans = plan_city(12, 40)
    ids = [d.device for p in plans for d in p.devices]
    assert len(ids) == len(set(ids)) == 480
    assert all(ID_RE.match(i) for i in ids)
    assert [p.site for p in plans][:2] == ["city-01", "city-02"]
    assert {d.kind for d in plans[0].devices} == {"air", "light", "flow"}
    assert plan_city(2, 3) == plan_city(2, 3)  # deterministic for a seed


def test_a_day_of_telemetry_passes_the_gateways_validation() -> None:
    """Every value over a simulated day is in range: nothing a gateway would reject."""
    for dev in plan_city(1, 4)[0].devices:
        walk = Walk(dev.seed)
        values: dict[str, list[float]] = {}
        for seq in range(0, 2880):  # 30 s steps
            ts = T0 + seq * 30
            body = telemetry_payload(dev, seq, ts, walk, 30)
            out = validate_telemetry(f"livinglab/v1/{dev.site}/{dev.device}/telemetry", body,
                                     dev.site, ts + 1, dev.device)
            assert out.rejections == () and out.accepted is not None, out.rejections
            for s in json.loads(body)["samples"]:
                for q, v in s["values"].items():
                    values.setdefault(q, []).append(v)
        for q, vs in values.items():
            assert len(set(vs)) > 5, f"{dev.device} {q} does not vary: {set(vs)}"
        assert json.loads(body)["seq"] == 2879 and json.loads(body)["boot"] == dev.boot


def test_status_and_will_pass_the_gateways_validation() -> None:
    dev = plan_city(1, 1)[0].devices[0]
    topic = f"livinglab/v1/{dev.site}/{dev.device}/status"
    body = status_payload(dev, 125.7, 30, -61, 91000)
    record, rej = validate_status(topic, body, dev.site, T0, dev.device)
    assert rej is None and record is not None
    obj = json.loads(body)
    assert obj["state"] == "online" and obj["interval_s"] == 30 and obj["uptime"] == 125
    assert {"fw", "board", "boot", "heap_free", "rssi"} <= set(obj)
    record, rej = validate_status(topic, OFFLINE, dev.site, T0, dev.device)
    assert rej is None and record is not None


def test_site_config_takes_the_citys_store(tmp_path: Path) -> None:
    city = tmp_path / "city.toml"
    city.write_text('[store]\nkind = "influxdb1"\nurl = "http://127.0.0.1:1"\n'
                    'database = "c"\n\n[quantities.noise]\nunit = "dB"\ndomain = "sound"\n'
                    "min = 0\nmax = 140\n")
    cfg = load_config(city, need_site=False)
    text = site_config_text("city-03", tmp_path / "var", 1883, 9100, store_table(cfg),
                            {k: v.model_dump(mode="json") for k, v in cfg.quantities.items()},
                            "lab/v1")
    import tomllib

    site = parse_config(tomllib.loads(text))
    assert site.site == "city-03" and site.gateway.id == "gw-city-03"
    assert site.store.kind == "influxdb1" and site.store.database == "c"
    assert "noise" in site.quantities and site.mqtt.port == 1883
    assert site.mqtt.topic_prefix == "lab/v1"


def _ours(marker: str) -> list[int]:
    """PIDs whose command line mentions ``marker`` (this test's own data dir)."""
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit() and int(d.name) != os.getpid():
            try:
                if marker.encode() in (d / "cmdline").read_bytes():
                    out.append(int(d.name))
            except OSError:
                continue
    return out


def _simulate(config: Path, data_dir: Path, *extra: str, sites: int = 2,
              per_site: int = 3) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "city", "simulate", "--config", str(config),
         "--sites", str(sites), "--devices-per-site", str(per_site), "--interval", "2",
         "--data-dir", str(data_dir), *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})


@pytest.mark.slow
def test_city_of_two_sites_lands_in_influxd(tmp_path: Path, influxd: Influxd) -> None:
    cfg = tmp_path / "city.toml"
    cfg.write_text(f'[store]\nkind = "influxdb1"\nurl = "{influxd.url}"\ndatabase = "city"\n')
    t0 = time.time()
    proc = _simulate(cfg, tmp_path / "run", "--duration", "20")
    out, err = proc.communicate(timeout=90)
    assert proc.returncode == 0, err
    lines = out.splitlines()
    assert any(li.startswith("  city-01: ") for li in lines), out
    assert any(li.startswith("  city-02: ") for li in lines), out
    assert f"store: influxdb1 {influxd.url}" in out
    assert _ours(str(tmp_path / "run")) == []  # brokers and gateways all gone

    res = influxd.query('SELECT count("co2") FROM "air" GROUP BY "site", "device"', "city")
    series = res["results"][0]["series"]  # type: ignore[index]
    counts = {(s["tags"]["site"], s["tags"]["device"]): s["values"][0][1] for s in series}
    air = {k: n for k, n in counts.items() if n}
    assert {site for site, _ in air} == {"city-01", "city-02"}
    assert len(air) == 4 and all(n >= 6 for n in air.values()), counts  # ~10 per device
    light = influxd.points("city", "light")
    assert {p["site"] for p in light} == {"city-01", "city-02"}
    devices = influxd.points("city", "device")
    for p in devices:
        assert t0 * 1000 - 5000 <= int(p["time"]) <= time.time() * 1000  # type: ignore[call-overload]
    # every device's will fired when the city stopped: its last point says offline
    last: dict[str, dict[str, object]] = {}
    for p in sorted(devices, key=lambda p: int(p["time"])):  # type: ignore[call-overload]
        if p.get("online") is not None:
            last[str(p["device"])] = p
    assert len(last) == 6 and all(p["online"] == 0.0 for p in last.values()), last


@pytest.mark.slow
def test_sigint_stops_everything(tmp_path: Path) -> None:
    cfg = tmp_path / "city.toml"
    cfg.write_text('[store]\nkind = "sqlite"\npath = "city.sqlite"\n')
    run = tmp_path / "run"
    proc = _simulate(cfg, run)
    assert proc.stdout is not None
    first = proc.stdout.readline()
    assert first.startswith("city: 2 sites x 3 devices"), first + proc.stderr.read()  # type: ignore[union-attr]
    assert len(_ours(str(run))) >= 4  # 2 brokers + 2 gateways

    def landed() -> int:
        with sqlite3.connect(tmp_path / "city.sqlite") as con:
            return int(con.execute("SELECT count(DISTINCT site) FROM readings "
                                   "WHERE measurement = 'air'").fetchone()[0])

    wait_for(lambda: landed() == 2, 30, what="readings from both sites")
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "city stopped" in out and "gateway exit 0" in out
    assert _ours(str(run)) == []


@pytest.mark.slow
def test_three_sites_through_vmagent_land_on_both_nodes(tmp_path: Path,
                                                        vm_cluster: VMCluster) -> None:
    """The HA layout: every gateway writes to vmagent, both nodes get every reading."""
    cfg = tmp_path / "city.toml"
    cfg.write_text("[store]\n" + "".join(f"{k} = {json.dumps(v)}\n"
                                         for k, v in vm_cluster.store().items()))
    proc = _simulate(cfg, tmp_path / "run", "--duration", "15", sites=3, per_site=2)
    out, err = proc.communicate(timeout=90)
    assert proc.returncode == 0, err
    assert f"store: influxdb2 {vm_cluster.agent.url}" in out

    def series(node: object) -> list[tuple[str, str, str, tuple[int, ...]]]:
        rows = node.export('{__name__="air_co2"}')  # type: ignore[attr-defined]
        return sorted((r["metric"]["site"], r["metric"]["device"], r["metric"]["sensor"],
                       tuple(r["timestamps"])) for r in rows)

    node1, node2 = vm_cluster.nodes
    wait_for(lambda: {s for s, *_ in series(node1)} == {"city-01", "city-02", "city-03"}, 20,
             what="air readings from the three sites on node 1")
    wait_for(lambda: series(node1) == series(node2), 20, what="both nodes holding the same")
    assert all(len(ts) >= 4 for *_, ts in series(node2))  # ~7 per device in 15 s
