"""TLS cost: handshake time (firmware and gateway side) and gateway ingest, TLS vs plain.

``python -m bench.tls [-n MESSAGES] [--handshakes K]``

One Mosquitto with a plain listener AND a TLS listener (certificates from
``provisioning.tls``, as ``broker certs`` makes them). Measured in one run, so
the ratios hold on a noisy machine even when the absolute figures do not:

- handshake: K connects of the MicroPython unix port (``tls`` module, mbedTLS,
  EC P-256, CA + host name verified) and of CPython's ``ssl``; median ms;
- ingest: N QoS 1 messages queued in the gateway's persistent session while it
  is stopped, then ``livinglab gateway`` (sqlite store) started over plain MQTT
  or over TLS; msg/s from the first to the last message received (``/metrics``).
"""

from __future__ import annotations

import argparse
import json
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import firmware
from provisioning import tls
from tests.gateway.helpers import GatewayProc, Publisher, write_config
from tests.servers import HOST, Mosquitto, free_port, running

SITE = "test-site"

_MP_HANDSHAKES = """
import socket, time, tls
ca = open('ca.der', 'rb').read()
ctx = tls.SSLContext(tls.PROTOCOL_TLS_CLIENT)
ctx.verify_mode = tls.CERT_REQUIRED
ctx.load_verify_locations(ca)
addr = socket.getaddrinfo('localhost', {port})[0][-1]
out = []
for _ in range({k}):
    s = socket.socket()
    s.connect(addr)
    t = time.ticks_us()
    w = ctx.wrap_socket(s, server_hostname='localhost')
    out.append(time.ticks_diff(time.ticks_us(), t))
    w.close()
print(out)
"""


def mp_handshakes(files: tls.TlsFiles, port: int, k: int, work: Path) -> list[float]:
    (work / "ca.der").write_bytes(files.ca_der.read_bytes())
    (work / "hs.py").write_text(_MP_HANDSHAKES.format(port=port, k=k))
    out = subprocess.run([firmware.micropython_binary(), "hs.py"], cwd=work, check=True,
                         capture_output=True, text=True, timeout=300).stdout
    return [us / 1000 for us in json.loads(out.strip().splitlines()[-1])]


def py_handshakes(files: tls.TlsFiles, port: int, k: int) -> list[float]:
    ctx = ssl.create_default_context(cafile=str(files.ca_cert))
    out = []
    for _ in range(k):
        with socket.create_connection((HOST, port)) as raw:
            t = time.perf_counter()
            with ctx.wrap_socket(raw, server_hostname="localhost"):
                out.append((time.perf_counter() - t) * 1000)
    return out


def received(gw: GatewayProc) -> float:
    return gw.metric('livinglab_messages_received_total{kind="telemetry"}')


def ingest(work: Path, broker_port: int, tls_port: int, files: tls.TlsFiles, n: int,
           use_tls: bool) -> float:
    """Queue n messages for a stopped gateway, start it, msg/s until all received."""
    hp = free_port()
    mqtt = ({"host": "localhost", "tls": True, "ca_file": str(files.ca_cert), "port": tls_port}
            if use_tls else {})
    cfg = write_config(work / "gw.toml", mqtt_port=broker_port, health_port=hp,
                       store={"kind": "sqlite"}, mqtt=mqtt,
                       gateway={"id": f"gw-{'tls' if use_tls else 'plain'}"})
    gw = GatewayProc(cfg, hp)
    gw.start()  # creates the persistent session and subscription
    assert gw.terminate() == 0
    pub = Publisher(broker_port, client_id=f"bench-{use_tls}")
    for seq in range(n):
        pub.send("air-0001", 1, seq, 1.79e9 + (1e6 if use_tls else 0))
    pub.wait_all(300)
    pub.close()
    gw.start()
    t0 = time.monotonic()
    first = None
    end = t0 + 600
    while time.monotonic() < end:
        got = received(gw)
        if got and first is None:
            first = time.monotonic()
        if got >= n:
            break
        time.sleep(0.05)
    elapsed = time.monotonic() - (first or t0)
    gw.terminate()
    return n / elapsed


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.tls", description=__doc__)
    ap.add_argument("-n", type=int, default=20000, help="messages per ingest run")
    ap.add_argument("--handshakes", type=int, default=20)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-tls-") as tmp:
        work = Path(tmp)
        files = tls.issue(work / "site", "bench", ["localhost", "127.0.0.1"]).files
        tls_port = free_port()
        extra = (f"listener {tls_port} {HOST}", f"cafile {files.ca_cert}",
                 f"certfile {files.server_cert}", f"keyfile {files.server_key}")
        with running(Mosquitto(work / "mosq", extra=extra)) as broker:
            mp = mp_handshakes(files, tls_port, args.handshakes, work)
            py = py_handshakes(files, tls_port, args.handshakes)
            rates = {}
            for use_tls in (False, True):
                d = work / ("tls" if use_tls else "plain")
                d.mkdir()
                rates[use_tls] = ingest(d, broker.port, tls_port, files, args.n, use_tls)
    result = {
        "handshake_ms_micropython_median": round(statistics.median(mp), 1),
        "handshake_ms_cpython_median": round(statistics.median(py), 2),
        "ingest_msg_s_plain": round(rates[False]),
        "ingest_msg_s_tls": round(rates[True]),
        "ingest_ratio_tls_over_plain": round(rates[True] / rates[False], 3),
        "messages": args.n, "handshakes": args.handshakes,
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
