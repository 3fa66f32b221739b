"""Shared fixtures: real servers on free loopback ports, stopped by PID."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import leftovers
from tests.servers import Influxd, Mosquitto, VictoriaMetrics, running
from tests.servers_centre import VMCluster, vm_ha


@pytest.fixture(autouse=True)
def no_process_left_behind(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test that leaves a process of its own running FAILS (and the process is killed):
    an orphaned device keeps publishing into later tests and holds ports and files.

    Its processes carry ``LIVINGLAB_TEST_ID`` (inherited from the environment set here),
    so an orphan re-parented to init is found too; new processes still below pytest
    count as well. Processes of session and module fixtures start outside the marker.
    """
    tag = hashlib.sha1(f"{os.getpid()}:{request.node.nodeid}".encode()).hexdigest()[:16]
    me = os.getpid()
    before = leftovers.descendants(me)
    os.environ[leftovers.MARKER] = tag
    try:
        yield
    finally:
        os.environ.pop(leftovers.MARKER, None)
    left: set[int] = set()
    end = time.monotonic() + 3.0  # a process stopped by the test may take a moment to exit
    while time.monotonic() < end:
        left = leftovers.marked(tag) | (leftovers.descendants(me) - before)
        if not left:
            return
        time.sleep(0.05)
    what = "; ".join(leftovers.describe(p) for p in sorted(left))
    leftovers.kill(left)
    pytest.fail(f"the test left {len(left)} process(es) running (killed now): {what}",
                pytrace=False)


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
