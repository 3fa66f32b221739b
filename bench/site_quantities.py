"""Validation with site-defined quantities: ``python -m bench.site_quantities``.

CPU-time rates of validate + encode (the gateway's pure hot path, as in
``bench.micro``) for: the built-in registry; a site registry of 20 additions with
the same built-in payload; and a payload whose values are site quantities in a
built-in and a new domain. Printed, never asserted.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from protocols import BUILTIN, Registry, encode_lines, site_quantity, validate_telemetry

from .micro import NOW, TOPIC, payload

SITE = Registry([site_quantity(f"q{i}", "u", "sound" if i % 2 else "air", 0, 1000)
                 for i in range(20)])


def site_payload(seq: int) -> bytes:
    return json.dumps({"v": 1, "device": "air-0001", "boot": 7, "seq": seq, "samples": [
        {"sensor": "mix", "ts": NOW - 1, "values": {"q0": 12.5, "q1": 54.5, "co2": 612}},
        {"sensor": "snd", "ts": NOW - 1, "values": {"q3": 61.0, "q5": 40.0}},
        {"sensor": "yfs201", "age": 2.5, "values": {"flow_rate": 3.2, "volume": 1234.5}},
    ]}).encode()


def rate(make: Callable[[int], bytes], registry: Registry, n: int = 20_000) -> float:
    payloads = [make(i) for i in range(n)]
    start = time.process_time()
    for p in payloads:
        out = validate_telemetry(TOPIC, p, "bdnc-lab", NOW, "air-0001", registry)
        assert out.accepted is not None and not out.rejections
        encode_lines(out.accepted.points)
    return n / (time.process_time() - start)


def main() -> None:
    rows = [("built-in payload, built-in registry", rate(payload, BUILTIN)),
            ("built-in payload, site registry (+20)", rate(payload, SITE)),
            ("site-quantity payload, site registry", rate(site_payload, SITE))]
    base = rows[0][1]
    for name, r in rows:
        print(f"{name:40s} {r:10.0f} msg/s  ({r / base:.2f}x)")


if __name__ == "__main__":
    main()
