"""sd_notify: the datagrams systemd would receive, on a real socket the test binds.

The end-to-end test runs the real gateway process against a real Mosquitto:
READY only once subscribed, WATCHDOG pings that stop while the process is
SIGSTOPped (a hung loop: systemd would kill and restart it) and resume on
SIGCONT, STOPPING on SIGTERM.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.ops.sdnotify import Notifier, describe
from tests.gateway.helpers import GatewayProc, Publisher, write_config
from tests.servers import Mosquitto, free_port, wait_for

ALIVE = {"mqtt_connected": True, "buffer_depth": 0, "oldest_age_s": 0.0, "buffer_full": False,
         "store_down_s": 0.0}


class NotifySocket:
    """The service manager's end: a bound datagram socket that collects messages."""

    def __init__(self, address: str | bytes) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(address)
        self.sock.settimeout(0.05)
        self.messages: list[tuple[float, str]] = []

    def collect(self) -> list[tuple[float, str]]:
        """Everything queued now (without waiting past the socket timeout)."""
        while True:
            try:
                data = self.sock.recv(4096)
            except (TimeoutError, BlockingIOError):
                return self.messages
            self.messages.append((time.monotonic(), data.decode()))

    def keys(self, key: str) -> list[float]:
        return [t for t, m in self.collect() if key in m.split("\n")]

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def notify_path(tmp_path: Path) -> Iterator[tuple[NotifySocket, str]]:
    path = tmp_path / "notify.sock"
    s = NotifySocket(str(path))
    yield s, str(path)
    s.close()


def test_without_notify_socket_nothing_is_sent() -> None:
    n = Notifier({})
    assert not n.enabled
    n.ready("x")
    n.status("y")
    n.stopping()
    assert n.sent == 0


def test_path_socket_ready_status_only_on_change_and_stopping(
        notify_path: tuple[NotifySocket, str]) -> None:
    sock, path = notify_path
    n = Notifier({"NOTIFY_SOCKET": path})
    n.status(describe(ALIVE))
    n.status(describe(ALIVE))  # unchanged: not sent again
    n.ready()
    n.ready()  # once only
    n.status(describe({**ALIVE, "mqtt_connected": False}))
    n.stopping()
    msgs = [m for _, m in wait_for(lambda: sock.messages if len(sock.collect()) >= 4 else [])]
    assert msgs == ["STATUS=broker connected; buffer 0 points; store ok",
                    "READY=1\nSTATUS=broker connected; buffer 0 points; store ok",
                    "STATUS=broker DISCONNECTED; buffer 0 points; store ok",
                    "STOPPING=1\nSTATUS=stopping"]
    n.close()


def test_abstract_namespace_socket() -> None:
    name = f"livinglab-test-{os.getpid()}-{time.monotonic_ns()}"
    sock = NotifySocket(b"\0" + name.encode())
    try:
        n = Notifier({"NOTIFY_SOCKET": "@" + name})
        n.ready("up")
        assert wait_for(lambda: sock.keys("READY=1"))
        n.close()
    finally:
        sock.close()


def test_watchdog_pings_at_a_quarter_of_watchdog_usec(
        notify_path: tuple[NotifySocket, str]) -> None:
    sock, path = notify_path
    n = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "200000",
                  "WATCHDOG_PID": str(os.getpid())})
    assert n.watchdog_s == 0.2

    async def run() -> None:
        task = asyncio.create_task(n.watchdog())
        await asyncio.sleep(0.32)
        n.ready()
        await asyncio.sleep(0.32)
        task.cancel()

    asyncio.run(run())
    msgs = [m for _, m in sock.collect()]
    before = msgs[:msgs.index("READY=1")]
    after = msgs[msgs.index("READY=1") + 1:]
    # before READY each ping extends the start timeout; after, plain pings
    assert before and all(m == "WATCHDOG=1\nEXTEND_TIMEOUT_USEC=200000" for m in before)
    assert after and all(m == "WATCHDOG=1" for m in after)
    # another process's watchdog (WATCHDOG_PID) is not ours
    assert Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "200000",
                     "WATCHDOG_PID": "1"}).watchdog_s is None


def test_describe_names_every_trouble() -> None:
    line = describe({"mqtt_connected": False, "buffer_depth": 42, "oldest_age_s": 61.2,
                     "store_down_s": 75.0, "buffer_full": True})
    assert line == ("broker DISCONNECTED; buffer 42 points (oldest 61 s); store DOWN for 75 s; "
                    "BUFFER FULL: not acknowledging")
    assert "DISK FULL" in describe({**ALIVE, "disk_full": True})


def _state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


@pytest.mark.slow
def test_gateway_notifies_ready_watchdog_stopping(tmp_path: Path, mosquitto: Mosquitto,
                                                 notify_path: tuple[NotifySocket, str]) -> None:
    sock, path = notify_path
    health = free_port()
    cfg = write_config(tmp_path / "gw.toml", mqtt_port=mosquitto.port, health_port=health,
                       store={"kind": "sqlite", "path": str(tmp_path / "readings.sqlite")})
    gw = GatewayProc(cfg, health)
    # WATCHDOG_PID is unset: systemd only sets it when the pid it forked is not the service's
    gw.start(wait_healthy=False, env={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "400000"})
    try:
        assert gw.proc is not None
        pid = gw.proc.pid
        wait_for(lambda: sock.keys("READY=1"), 30, what="READY=1")
        # READY means subscribed: a message published right now, on the gateway's first
        # ever connection (no session to queue it before), reaches the store.
        pub = Publisher(mosquitto.port)
        pub.send("dev-a", 1, 1, 1_795_351_934.0)

        def stored() -> int:
            try:
                with sqlite3.connect(tmp_path / "readings.sqlite") as db:
                    return int(db.execute("SELECT count(*) FROM readings "
                                           "WHERE measurement = 'air'").fetchone()[0])
            except sqlite3.OperationalError:
                return 0

        wait_for(lambda: stored() == 2, 20, what="the reading in the store")
        pub.client.loop_stop()
        pub.client.disconnect()
        ready_at = sock.keys("READY=1")[0]
        assert len([t for t in sock.keys("WATCHDOG=1") if t > ready_at]) >= 1
        wait_for(lambda: any("broker connected" in m for _, m in sock.collect()
                             if m.startswith("STATUS=") or "\nSTATUS=" in m), 10)

        # a hung process sends no pings: SIGSTOP for 1 s = 10 watchdog intervals
        os.kill(pid, signal.SIGSTOP)
        wait_for(lambda: _state(pid) == "T", 5, what="process stopped")
        sock.collect()
        stopped_at = time.monotonic()
        time.sleep(1.0)  # proving an absence needs a wait; 10 intervals of 0.1 s
        assert [t for t in sock.keys("WATCHDOG=1") if t > stopped_at] == []
        os.kill(pid, signal.SIGCONT)
        resumed_at = time.monotonic()
        wait_for(lambda: [t for t in sock.keys("WATCHDOG=1") if t > resumed_at], 5,
                 what="watchdog pings after SIGCONT")

        assert gw.terminate() == 0
        msgs = [m for _, m in sock.collect()]
        stop_i = next(i for i, m in enumerate(msgs) if m.startswith("STOPPING=1"))
        assert stop_i > next(i for i, m in enumerate(msgs) if m.startswith("READY=1"))
    finally:
        gw.kill()
