"""A plain paho QoS 1 subscriber that only counts: the broker's own ceiling.

``python -m bench.counter --port P --expect N``: prints ``ready`` once the
subscription is acknowledged, then one JSON line (received, first and last
receive time) when N messages arrived, or nothing arrived for ``--idle`` s.
It does no work per message, so what it reaches is what Mosquitto and a Python
MQTT client can carry on this machine while the same publishers run.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

TOPIC = "livinglab/v1/+/+/telemetry"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--expect", type=int, required=True)
    ap.add_argument("--idle", type=float, default=10.0)
    ap.add_argument("--timeout", type=float, default=600.0)
    ap.add_argument("--session", default="",
                    help="client id of a persistent session (clean_session false): with "
                         "--expect 0 it only subscribes, so the broker queues for it")
    a = ap.parse_args(argv)
    state = {"n": 0, "t_first": 0.0, "t_last": 0.0, "subscribed": False}

    def on_message(_c: object, _u: object, _m: object) -> None:
        t = time.time()
        if not state["n"]:
            state["t_first"] = t
        state["n"] += 1
        state["t_last"] = t

    def on_subscribe(*_args: object) -> None:
        state["subscribed"] = True
        print("ready", flush=True)

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=a.session or "bench-counter",
                         clean_session=not a.session)
    client.on_message = on_message
    client.on_subscribe = on_subscribe
    client.on_connect = lambda c, *_: c.subscribe(TOPIC, qos=1)
    client.connect("127.0.0.1", a.port, keepalive=60)
    end = time.monotonic() + a.timeout
    while (state["n"] < a.expect or not state["subscribed"]) and time.monotonic() < end:
        client.loop(timeout=0.1)
        if state["n"] and time.time() - state["t_last"] > a.idle:
            break
    client.disconnect()
    print(json.dumps({"received": state["n"], "t_first_recv": state["t_first"],
                      "t_last_recv": state["t_last"]}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
