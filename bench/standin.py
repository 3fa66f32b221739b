"""Stand-in consumer: MQTT -> line protocol -> store, with acks after the write.

``python -m bench.standin --config gw.toml`` reads the same config file as
``livinglab gateway`` (mqtt port/client id, store kind/url/db, health_port)
and serves the same ``livinglab_points_forwarded_total`` counter, so the
harness can be built and checked before the real gateway forwards anything,
and gives a floor for what one plain Python process reaches on this machine.
No validation, no durable buffer: it is a harness check, not a gateway.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
import urllib.parse
import urllib.request

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from prometheus_client import CollectorRegistry, Counter, start_http_server

from protocols.config import Config, load_config

DOMAIN = {"co2": "air", "temperature": "air", "humidity": "air", "illuminance": "light",
          "cct": "light", "flow_rate": "flow", "volume": "flow", "water_temperature": "flow"}


def lines_of(site: str, payload: bytes) -> list[str]:
    """Line protocol for one telemetry message: one point per (sample, domain)."""
    msg = json.loads(payload)
    out = []
    for s in msg["samples"]:
        by_dom: dict[str, list[str]] = {}
        for q, v in s["values"].items():
            by_dom.setdefault(DOMAIN[q], []).append(f"{q}={float(v)!r}")
        ms = round(s["ts"] * 1000)
        for dom, fields in by_dom.items():
            out.append(f"{dom},device={msg['device']},sensor={s['sensor']},site={site} "
                       f"{','.join(sorted(fields))} {ms}")
    return out


def write_url(cfg: Config) -> str:
    st = cfg.store
    if st.kind == "influxdb2":
        q = urllib.parse.urlencode({"org": st.org, "bucket": st.bucket, "precision": "ms"})
        return f"{st.url}/api/v2/write?{q}"
    q = urllib.parse.urlencode({"db": st.database, "precision": "ms"})
    return f"{st.url}/write?{q}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--config", required=True)
    cfg = load_config(ap.parse_args(argv).config)
    url = write_url(cfg)
    if cfg.store.kind == "influxdb1":
        data = urllib.parse.urlencode({"q": f'CREATE DATABASE "{cfg.store.database}"'}).encode()
        urllib.request.urlopen(f"{cfg.store.url}/query", data=data, timeout=10).close()
    reg = CollectorRegistry()
    forwarded = Counter("livinglab_points_forwarded", "Points the store acknowledged",
                        registry=reg)
    if cfg.gateway.health_port:
        start_http_server(cfg.gateway.health_port, "127.0.0.1", registry=reg)
    pending: list[tuple[list[str], int]] = []
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))

    def on_message(_c: object, _u: object, m: mqtt.MQTTMessage) -> None:
        pending.append((lines_of(cfg.site, m.payload), m.mid))

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=cfg.client_id,
                         clean_session=False)
    client.manual_ack_set(True)
    client.max_inflight_messages_set(cfg.mqtt.receive_maximum)
    client.on_message = on_message
    client.on_connect = lambda c, _u, _f, _rc, _p: c.subscribe(
        f"{cfg.mqtt.topic_prefix}/{cfg.site}/+/telemetry", qos=1)
    client.connect(cfg.mqtt.host, cfg.mqtt.port, keepalive=cfg.mqtt.keepalive)
    last_flush = time.monotonic()

    def flush() -> None:
        nonlocal pending, last_flush
        batch, pending = pending, []
        last_flush = time.monotonic()
        if not batch:
            return
        body = "\n".join(ln for lines, _ in batch for ln in lines).encode()
        for _ in range(50):
            try:
                urllib.request.urlopen(urllib.request.Request(url, data=body),
                                       timeout=cfg.store.timeout_s).close()
                break
            except OSError as e:
                print(f"standin: write failed ({e}); retrying", file=sys.stderr, flush=True)
                time.sleep(0.5)
        else:
            raise SystemExit("standin: store unreachable")
        for _lines, mid in batch:
            client.ack(mid, 1)
        forwarded.inc(sum(len(lines) for lines, _ in batch))

    while not stop:
        client.loop(timeout=0.02)
        if len(pending) * 3 >= cfg.store.batch_size or (
                pending and time.monotonic() - last_flush >= cfg.store.flush_interval_s):
            flush()
    flush()
    client.loop(timeout=0.1)
    client.disconnect()
    return 0


if __name__ == "__main__":
    sys.exit(main())
