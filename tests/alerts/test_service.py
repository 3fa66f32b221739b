"""The service loop: sd_notify READY / WATCHDOG / STATUS / STOPPING, a state file per
cycle, an unreadable store counted and survived."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from gateway.alerts.engine import Engine
from gateway.alerts.service import run_service
from gateway.alerts.state import AlertState, load_state
from gateway.ops.sdnotify import Notifier
from gateway.stores.centre import DevicePoint, GatewayPoint
from gateway.stores.reading import StoreUnreadable
from protocols.config import AlertsSection

from .fake_reader import FakeReader


@pytest.fixture
def notify(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(0.05)
    yield sock, path
    sock.close()


def drain(sock: socket.socket) -> list[str]:
    out = []
    while True:
        try:
            out += sock.recv(4096).decode().split("\n")
        except (TimeoutError, BlockingIOError):
            return out


class Flaky(FakeReader):
    """A store that fails every other cycle."""

    def gateways(self, sites: Sequence[str] = ()) -> list[GatewayPoint]:
        if self.n_queries % 2 == 0:
            self.n_queries += 1
            raise StoreUnreadable("store down (test)")
        return super().gateways(sites)


def test_notify_cycle_state_and_sigterm(tmp_path: Path,
                                        notify: tuple[socket.socket, str]) -> None:
    sock, path = notify
    now = int(time.time() * 1000)
    r = Flaky()
    r.gateway_points.append(GatewayPoint("s1", "gw1", now, disk_free_bytes=5e9))
    r.device_pts.append(DevicePoint("s1", "d1", now - 1000_000, {"online": 0.0}))
    eng = Engine(r, AlertsSection(interval_s=1, alertmanager_url="http://127.0.0.1:9"),
                 AlertState())
    state_file = tmp_path / "alerts.json"
    notifier = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "800000"})
    msgs: list[str] = []

    async def go() -> object:
        task = asyncio.create_task(run_service(eng, state_file, notifier))
        deadline = time.monotonic() + 15
        while not state_file.exists() or eng.send_failures < 2:
            assert time.monotonic() < deadline, "no cycle"
            await asyncio.sleep(0.05)
            msgs.extend(drain(sock))  # as systemd would: the queue never fills
        os.kill(os.getpid(), signal.SIGTERM)  # handled by the loop: a clean stop
        return await asyncio.wait_for(task, 10)

    counters = asyncio.run(go())
    msgs += drain(sock)
    assert "READY=1" in msgs and "STOPPING=1" in msgs
    assert msgs.count("WATCHDOG=1") >= 2
    assert any(m.startswith("STATUS=1 alerts firing; ALERTMANAGER UNREACHABLE") for m in msgs)
    assert any(m.startswith("STATUS=STORE UNREADABLE") for m in msgs)
    assert counters.store_failures >= 1  # type: ignore[attr-defined]
    saved = load_state(state_file)
    assert [t.labels["alertname"] for t in saved.active.values()] == ["DeviceOffline"]
