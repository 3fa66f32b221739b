"""The alerts unit (systemd-analyze verify), and the console's read of what fires."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.alerts.client import post_alerts
from gateway.alerts.errors import AlertmanagerUnreachable
from gateway.alerts.firing import alert_row, firing_alerts
from gateway.alerts.install import UNIT_NAME, alerts_unit_text
from tests.servers import free_port, running
from tests.servers_centre import Alertmanager

from .scene import centre_config, load

ANALYZE = shutil.which("systemd-analyze")


@pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed")
def test_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    path = centre_config(tmp_path, "http://127.0.0.1:9093",
                         extra=f'state_file = "{tmp_path / "state" / "a.json"}"\n')
    text = alerts_unit_text(load(path), path, "root")
    assert f"ReadWritePaths={tmp_path / 'state'}" in text
    assert "ExecStart=" in text and " alerts --config " in text
    unit = tmp_path / UNIT_NAME
    unit.write_text(text)
    res = subprocess.run([str(ANALYZE), "verify", str(unit)], capture_output=True, text=True,
                         timeout=60, check=False)
    if "Failed to initialize manager" in res.stderr or "No such file or directory" in res.stderr \
            and "/run/systemd" in res.stderr:
        pytest.skip(f"systemd-analyze cannot run here: {res.stderr.strip()[:200]}")
    assert res.returncode == 0 and res.stdout.strip() == "" and res.stderr.strip() == "", res


@pytest.fixture
def am(tmp_path: Path) -> Iterator[Alertmanager]:
    with running(Alertmanager(tmp_path / "am")) as server:
        yield server


def _ts(offset_s: float) -> str:
    t = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=offset_s)
    return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def test_firing_alerts_rows_skip_silenced_and_resolved(am: Alertmanager) -> None:
    def alert(name: str, ends: float, **labels: str) -> dict[str, object]:
        return {"labels": {"alertname": name, "severity": "warning", **labels},
                "annotations": {"summary": f"{name} summary", "runbook_url": "x"},
                "startsAt": _ts(-60), "endsAt": _ts(ends)}

    post_alerts(am.url, [
        alert("DeviceSilent", 120, site="b", device="d2"),
        alert("GatewayDown", 120, site="a", gateway="gw1"),
        alert("Co2High", 120, site="b", device="d1", quantity="co2"),
        alert("DiskLow", 120, site="c", gateway="gw9"),  # silenced below
        alert("DeviceOffline", -1, site="a", device="d0"),  # resolved
    ])
    silence = {"matchers": [{"name": "site", "value": "c", "isRegex": False}],
               "startsAt": _ts(-1), "endsAt": _ts(3600), "createdBy": "test",
               "comment": "maintenance"}
    req = urllib.request.Request(f"{am.url}/api/v2/silences", json.dumps(silence).encode(),
                                 {"Content-Type": "application/json"}, method="POST")
    urllib.request.urlopen(req, timeout=10).read()
    rows = firing_alerts(am.url)
    assert [(r["site"], r["alertname"]) for r in rows] == [
        ("a", "GatewayDown"), ("b", "Co2High"), ("b", "DeviceSilent")]
    assert rows[1] == {"alertname": "Co2High", "severity": "warning", "site": "b",
                       "device": "d1", "quantity": "co2", "summary": "Co2High summary",
                       "startsAt": rows[1]["startsAt"]}
    assert rows[0]["gateway"] == "gw1" and "device" not in rows[0]
    assert rows[1]["startsAt"].endswith("Z")


def test_firing_alerts_without_url_or_alertmanager() -> None:
    assert firing_alerts("") == []
    with pytest.raises(AlertmanagerUnreachable, match="did not answer as expected: .*refused"):
        firing_alerts(f"http://127.0.0.1:{free_port()}", timeout=2)
    assert alert_row({"labels": {}}) is None
