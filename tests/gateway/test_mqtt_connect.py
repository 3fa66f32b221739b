"""Connecting never stalls the event loop: paho's blocking connect (TCP, the TLS
handshake) runs in a worker thread, so the watchdog and /healthz keep going even
when the peer accepts and then says nothing."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from pathlib import Path

from gateway.ingest.mqtt import MqttSource
from protocols.config import parse_config
from tests.servers import Mosquitto


def _silent_listener() -> tuple[socket.socket, int]:
    """A TCP server that accepts and never answers (a hung broker, a firewall tarpit)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            held.append(conn)

    threading.Thread(target=accept, daemon=True).start()
    return srv, srv.getsockname()[1]


async def _max_loop_gap(during: asyncio.Task[object], seconds: float) -> float:
    """The longest time the loop did not run a 50 ms ticker, while ``during`` runs."""
    gap, last = 0.0, time.monotonic()
    end = last + seconds
    while time.monotonic() < end and not during.done():
        await asyncio.sleep(0.05)
        now = time.monotonic()
        gap, last = max(gap, now - last), now
    return gap


def test_tls_connect_to_a_silent_peer_does_not_block_the_loop(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization

    from provisioning.tls import make_ca

    srv, port = _silent_listener()
    _, cert = make_ca("lab")
    ca = tmp_path / "ca.crt"
    ca.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    cfg = parse_config({"site": "lab", "mqtt": {"port": port, "tls": True,
                                                "ca_file": str(ca)}}, tmp_path, env={})

    async def main() -> float:
        src = MqttSource(cfg, "livinglab/v1/lab/#", lambda m: None, "t", b"x")
        task = asyncio.ensure_future(src.connect(timeout_s=3))
        gap = await _max_loop_gap(task, 3.0)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return gap

    try:
        gap = asyncio.run(asyncio.wait_for(main(), 30))
    finally:
        srv.close()
    assert gap < 0.5, f"the event loop stood still for {gap:.2f} s during connect"


def test_publish_wait_is_confirmed_by_the_broker(tmp_path: Path, mosquitto: Mosquitto) -> None:
    cfg = parse_config({"site": "lab", "mqtt": {"port": mosquitto.port}}, tmp_path, env={})

    async def main() -> tuple[bool, float]:
        src = MqttSource(cfg, "livinglab/v1/lab/#", lambda m: None, "t", b"x")
        await src.connect(timeout_s=10)
        t0 = time.monotonic()
        ok = await src.publish_wait("livinglab/v1/lab/_gateway/gw-01/status", b"{}", 5)
        took = time.monotonic() - t0
        await src.close()
        return ok, took

    ok, took = asyncio.run(asyncio.wait_for(main(), 30))
    assert ok and took < 1.0
