"""``livinglab alerts`` as a user runs it, over a real SQLite store (and Alertmanager)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from gateway.alerts.engine import Engine
from gateway.alerts.state import AlertState
from gateway.stores.readers import make_centre_reader
from tests.servers import Influxd, VictoriaMetrics, free_port, running, wait_for
from tests.servers_centre import Alertmanager

from .scene import S, Scene, centre_config, load, now_ms
from .webhook import Hook, webhook

DAY = 86_400 * S


def cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gateway.cli", "alerts", *args],
                          capture_output=True, text=True, timeout=timeout, check=False)


def troubled_city(tmp: Path, url: str = "", interval_s: float = 30, store: str = "",
                  flush: Callable[[], None] = lambda: None) -> Path:
    """Three sites; every built-in rule has one thing to say about site ``s1``/``s2``."""
    path = centre_config(tmp, url, interval_s, store=store, extra=(
        '[[alerts.threshold]]\nname = "Co2High"\nquantity = "co2"\nabove = 1500.0\n'
        'for_s = 300\nhysteresis = 100.0\n'))
    now = now_ms()
    sc = Scene()
    sc.fleet("s1", 8, now - 5 * S, quiet=("air-0000", "air-0005"))
    sc.fleet("s2", 3, now - 5 * S)
    sc.fleet("s3", 3, now - 5 * S)
    sc.reading("s1", "air-0000", now - 400 * S)  # silent
    sc.last_will("s1", "air-0001", now - 400 * S)  # offline for 400 s
    sc.status("s1", "air-0002", now - 120 * S, update_state="rolled_back",
              update_version="1.5.0", update_reason="no confirm")
    day = now // DAY * DAY - DAY
    for h in range(24):
        sc.delivery("s1", "air-0003", day + h * 3600 * S, accepted=40, missing=20)
        sc.delivery("s1", "air-0004", day + h * 3600 * S, accepted=60)
    for i in range(6):
        sc.reading("s1", "air-0005", now - i * 50 * S, co2=1700.0)
    sc.station("s1", "air-0006", now - DAY, retired=True)
    sc.last_will("s1", "air-0006", now - 4000 * S)  # retired: never named
    sc.gateway("s2", now - 2 * S, buffer_oldest_s=900.0, disk_free_bytes=1e8)
    sc.gateway("s3", now - 2 * S, up=0.0)  # shut down
    sc.last_will("s3", "air-0000", now - 4000 * S)  # its site is down: not named
    sc.write(load(path))
    flush()
    return path


EXPECTED = [
    "BufferBacklog site=s2 gateway=gw1 severity=warning",
    "CaptureLow site=s1 device=air-0003 severity=warning",
    "Co2High site=s1 device=air-0005 quantity=co2 severity=warning",
    "DeviceOffline site=s1 device=air-0001 severity=warning",
    "DeviceSilent site=s1 device=air-0000 severity=warning",
    "DiskLow site=s2 gateway=gw1 severity=critical",
    "GatewayDown site=s3 gateway=gw1 severity=critical",
    "UpdateFailed site=s1 device=air-0002 severity=warning",
]


@pytest.fixture(params=["sqlite", "victoria", "influxd"])
def city(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Path]:
    """The troubled city in each kind of store the centre reads."""
    if request.param == "sqlite":
        yield troubled_city(tmp_path)
    elif request.param == "victoria":
        with running(VictoriaMetrics(tmp_path / "vm")) as vm:
            yield troubled_city(tmp_path, flush=vm.flush, store=(
                f'[store]\nkind = "influxdb2"\nurl = "{vm.url}"\nflavour = "victoriametrics"\n'))
    else:
        with running(Influxd(tmp_path / "influxd")) as influxd:
            yield troubled_city(tmp_path, store=(
                f'[store]\nkind = "influxdb1"\nurl = "{influxd.url}"\ndatabase = "city"\n'))


def test_once_prints_sorted_lines_and_writes_nothing(city: Path, tmp_path: Path) -> None:
    res = cli("--config", str(city), "--once")
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == EXPECTED
    assert not (tmp_path / "var" / "alerts.json").exists()


def test_silent_device_through_the_store(tmp_path: Path) -> None:
    path = centre_config(tmp_path)
    now = now_ms()
    sc = Scene()
    sc.gateway("s1", now - 5 * S)
    sc.station("s1", "air-0000", now - DAY)
    sc.status("s1", "air-0000", now - 900 * S)
    sc.reading("s1", "air-0000", now - 200 * S)
    sc.station("s1", "air-0001", now - DAY)
    sc.status("s1", "air-0001", now - 900 * S)
    sc.reading("s1", "air-0001", now - 100 * S)  # 100 s < 3 x 60 s: online
    sc.write(load(path))
    res = cli("--config", str(path), "--once")
    assert res.stdout.splitlines() == ["DeviceSilent site=s1 device=air-0000 severity=warning"]


def test_service_needs_a_url(tmp_path: Path) -> None:
    res = cli("--config", str(centre_config(tmp_path)))
    assert res.returncode == 2
    assert res.stderr.strip().splitlines()[-1].startswith(
        "livinglab: config key 'alerts.alertmanager_url'")


def test_bad_input_is_one_line(tmp_path: Path) -> None:
    res = cli("--config", str(tmp_path / "nope.toml"), "--once")
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert res.stderr.strip().splitlines()[-1].startswith("livinglab: config file")
    bad = centre_config(tmp_path, extra='[[alerts.threshold]]\nname = "X"\nquantity = "co2"\n')
    res = cli("--config", str(bad), "--once")
    assert res.returncode == 2 and "above or below" in res.stderr
    (tmp_path / "var").mkdir(exist_ok=True)
    (tmp_path / "var" / "alerts.json").write_text("{")
    res = cli("--config", str(centre_config(tmp_path)), "--once")
    assert res.returncode == 2 and "state file" in res.stderr.splitlines()[-1]


def test_store_down_is_one_line(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    path = centre_config(tmp_path, store=(
        f'[store]\nkind = "influxdb1"\nurl = "{dead}"\ndatabase = "city"\ntimeout_s = 2\n'))
    res = cli("--config", str(path), "--once")
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert res.stderr.strip().splitlines()[-1].startswith("livinglab: ")


def test_install_service_print(tmp_path: Path) -> None:
    path = centre_config(tmp_path, "http://127.0.0.1:9093")
    res = cli("install-service", "--config", str(path), "--print")
    assert res.returncode == 0, res.stderr
    unit = res.stdout
    assert "Type=notify" in unit and "WatchdogSec=" in unit
    assert f"ReadWritePaths={tmp_path / 'var'}" in unit
    assert " alerts --config " in unit and "mosquitto" not in unit


def test_queries_per_cycle_do_not_grow_with_devices(tmp_path: Path) -> None:
    counts = []
    for n in (5, 400):
        d = tmp_path / str(n)
        d.mkdir()
        path = centre_config(d, extra=(
            '[[alerts.threshold]]\nname = "Co2High"\nquantity = "co2"\nabove = 1500.0\n'))
        now = now_ms()
        sc = Scene()
        for site in ("s1", "s2"):
            devs = sc.fleet(site, n, now - 5 * S)
            for dev in devs[:3]:  # a few failed updates: their history is read once
                sc.status(site, dev, now - 60 * S, update_state="refused",
                          update_version="2.0")
        cfg = load(path)
        sc.write(cfg)
        reader = make_centre_reader(cfg)
        try:
            eng = Engine(reader, cfg.alerts, AlertState())
            first = eng.cycle(now_ms())
            second = eng.cycle(now_ms())
        finally:
            reader.close()
        assert len(first.firing) == 6
        counts.append((first.queries, second.queries))
    assert counts[0] == counts[1], counts


@pytest.fixture
def hook() -> Iterator[Hook]:
    with webhook() as h:
        yield h


@pytest.fixture
def am(tmp_path: Path, hook: Hook) -> Iterator[Alertmanager]:
    with running(Alertmanager(tmp_path / "am", webhook=hook.url)) as server:
        yield server


def _labels(am: Alertmanager) -> dict[str, str]:
    out = {}
    for a in am.alerts(active="true"):
        lab = a["labels"]
        assert isinstance(lab, dict)
        out[f'{lab["alertname"]} {lab.get("device") or lab.get("gateway")} {lab["site"]}'] = \
            str(a["startsAt"])
    return out


@pytest.mark.slow
def test_once_sends_when_a_url_is_set(tmp_path: Path, am: Alertmanager) -> None:
    path = troubled_city(tmp_path, am.url)
    res = cli("--config", str(path), "--once")
    assert res.returncode == 0 and res.stdout.splitlines() == EXPECTED
    assert len(_labels(am)) == len(EXPECTED)


@pytest.mark.slow
def test_service_fires_resolves_and_restarts_without_refiring(
        tmp_path: Path, am: Alertmanager, hook: Hook) -> None:
    path = troubled_city(tmp_path, am.url, interval_s=1)
    state_file = tmp_path / "var" / "alerts.json"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}

    def start() -> subprocess.Popen[str]:
        return subprocess.Popen([sys.executable, "-m", "gateway.cli", "alerts", "--config",
                                 str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env=env)

    proc = start()
    try:
        first = wait_for(lambda: lab if len(lab := _labels(am)) == len(EXPECTED) else {}, 30,
                         what="every alert in Alertmanager")
        wait_for(lambda: len({n for s, n, _ in hook.notes() if s == "firing"}) == 8, 30,
                 what="a notification per alert")
        wait_for(state_file.exists, 10, what="the state file")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
        saved = json.loads(state_file.read_text())
        assert len(saved["active"]) == len(EXPECTED)
        # the offline device comes back while the evaluator is stopped
        sc = Scene()
        sc.status("s1", "air-0001", now_ms(), uptime=3.0)
        sc.reading("s1", "air-0001", now_ms())
        sc.gateway("s1", now_ms())
        sc.gateway("s2", now_ms(), buffer_oldest_s=900.0, disk_free_bytes=1e8)
        sc.write(load(path))
        proc = start()
        wait_for(lambda: hook.resolved("DeviceOffline", "air-0001") == 1, 30,
                 what="the resolution after the restart")
        now_firing = _labels(am)
        for key, starts in now_firing.items():
            assert first[key] == starts, key  # same startsAt: not re-fired
        assert hook.firing("DiskLow", "gw1") == 1
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
