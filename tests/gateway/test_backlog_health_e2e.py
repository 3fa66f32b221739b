"""Health before backlog, end to end (wire contract): a gateway restarted with 50,000
points waiting writes its ``gateway`` point first, within seconds of the store
coming back, and then the whole backlog, nothing lost.

The store is a recording InfluxDB 1 write endpoint on loopback (503 while "down"),
so the test sees the order of the batches, which a real engine does not show.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.gateway.helpers import GatewayProc, Publisher, write_config
from tests.servers import free_port, wait_for

pytestmark = pytest.mark.slow

MESSAGES = 1000
SAMPLES = 50  # one air point (co2 + temperature) per sample: 50,000 points


class Recorder(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.down = True
        self.bodies: list[tuple[float, bytes]] = []
        self.lock = threading.Lock()

    def lines(self) -> list[bytes]:
        with self.lock:
            return [line for _, b in self.bodies for line in b.split(b"\n") if line]


class _Handler(BaseHTTPRequestHandler):
    server: Recorder

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.server.down:
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.path.startswith("/write"):
            with self.server.lock:
                self.server.bodies.append((time.time(), body))
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        out = b'{"results":[{"statement_id":0}]}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    server = Recorder()
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    yield server
    server.shutdown()
    server.server_close()


def test_restart_with_a_50k_backlog_writes_health_first(tmp_path: Path, mosquitto: Any,
                                                       recorder: Recorder) -> None:
    hp = free_port()
    url = f"http://127.0.0.1:{recorder.server_address[1]}"
    cfg = write_config(tmp_path / "gw.toml", mqtt_port=mosquitto.port, health_port=hp,
                       store={"kind": "influxdb1", "url": url, "database": "ll",
                              "max_backoff_s": 1.0},
                       gateway={"store_health_s": 5})
    gw = GatewayProc(cfg, hp)
    gw.start(wait_healthy=False)
    wait_for(lambda: gw.healthz()[0] in (200, 503) and gw.healthz()[1].get("mqtt_connected"),
             30, what="gateway connected")
    pub = Publisher(mosquitto.port)
    try:
        base = time.time() - 2 * MESSAGES * SAMPLES  # one second per sample, all past
        for seq in range(MESSAGES):
            pub.send(f"air-{seq % 10:04d}", 1, seq, base, samples=SAMPLES)
        pub.wait_all(120)
        want = len(pub.expected) // 2  # rows are (co2, temperature) per point
        assert want == MESSAGES * SAMPLES, (want, len(pub.expected))
        seen: list[Any] = []

        def depth() -> int:
            seen[:] = [gw.healthz()[1]]
            return int(seen[0].get("buffer_depth", 0))

        try:
            wait_for(lambda: depth() >= want, 120, what="the backlog in the buffer")
        except TimeoutError:
            raise AssertionError(f"{seen} {gw.metrics()}") from None
        assert gw.terminate(30) == 0  # the store is still down: the backlog stays
        gw.start(wait_healthy=False)
        wait_for(lambda: gw.healthz()[1].get("buffer_depth", 0) >= want, 30,
                 what="the restarted gateway with its backlog")
        up_at = time.time()
        recorder.down = False
        wait_for(lambda: recorder.bodies, 30, what="a first write")
        first_at, first = recorder.bodies[0]
        lines = first.split(b"\n")
        assert lines[0].startswith(b"gateway,") and b"up=1" in lines[0]
        assert all(line.startswith((b"gateway,", b"gateway_info,")) for line in lines)
        print(f"first write {first_at - up_at:.2f} s after the store came back, "
              f"{len(lines)} health lines, backlog {want} points")
        assert first_at - up_at < 5.0, "health within seconds of the store coming back"
        wait_for(lambda: sum(1 for line in recorder.lines() if line.startswith(b"air,"))
                 >= want, 120, what="the whole backlog")
        air = [line for line in recorder.lines() if line.startswith(b"air,")]
        assert len(set(air)) == want  # nothing lost
        health = [line for line in recorder.lines() if line.startswith(b"gateway,")]
        # points from the first run's outage (their buffer_points grew) came first too
        assert any(b"buffer_points=" in h and b"buffer_points=0" not in h for h in health)
    finally:
        pub.close()
        gw.kill()
