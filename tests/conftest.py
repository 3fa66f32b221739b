"""Shared fixtures: real servers on free loopback ports, stopped by PID."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers import Influxd, Mosquitto, VictoriaMetrics, VMCluster, running, vm_ha


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    with running(Mosquitto(tmp_path / "mosquitto")) as server:
        yield server


@pytest.fixture
def influxd(tmp_path: Path) -> Iterator[Influxd]:
    with running(Influxd(tmp_path / "influxd")) as server:
        yield server


@pytest.fixture
def victoria(tmp_path: Path) -> Iterator[VictoriaMetrics]:
    with running(VictoriaMetrics(tmp_path / "vm")) as server:
        yield server


@pytest.fixture
def vm_cluster(tmp_path: Path) -> Iterator[VMCluster]:
    """vmagent + 2 VictoriaMetrics nodes (the HA layout of docs/city.md)."""
    with vm_ha(tmp_path / "vm-ha") as cluster:
        yield cluster
