"""Micro-benchmarks of the gateway's pure hot path, no servers: ``python -m bench.micro``.

Prints CPU-time rates for validate + encode (protocols) and for a durable-buffer
put of 100 messages x 3 points, the ingress's typical batch. These moved here
from the test suite: speed is measured and printed, never asserted.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from gateway.buffer.core import DurableBuffer
from protocols import Accepted, encode_lines, validate_telemetry

TOPIC = "livinglab/v1/bdnc-lab/air-0001/telemetry"
NOW = time.time()


def payload(seq: int) -> bytes:
    return json.dumps({"v": 1, "device": "air-0001", "boot": 7, "seq": seq, "samples": [
        {"sensor": "scd41", "ts": NOW - 1,
         "values": {"co2": 612, "temperature": 22.41, "humidity": 48.2}},
        {"sensor": "veml7700", "ts": NOW - 1, "values": {"illuminance": 312.5, "cct": 4100}},
        {"sensor": "yfs201", "age": 2.5,
         "values": {"flow_rate": 3.2, "volume": 1234.5, "water_temperature": 14.0}},
    ]}).encode()


def bench_validate(n: int = 20_000) -> float:
    """Validate into :class:`Point` objects, then encode them (the API's two steps)."""
    payloads = [payload(i) for i in range(n)]
    start = time.process_time()
    for p in payloads:
        out = validate_telemetry(TOPIC, p, "bdnc-lab", NOW, "air-0001")
        assert out.accepted is not None
        encode_lines(out.accepted.points)
    return n / (time.process_time() - start)


def bench_one_pass(n: int = 20_000) -> float:
    """Validate and encode in one pass (``encode=True``: what the gateway runs)."""
    payloads = [payload(i) for i in range(n)]
    start = time.process_time()
    for p in payloads:
        out = validate_telemetry(TOPIC, p, "bdnc-lab", NOW, "air-0001", encode=True)
        assert out.accepted is not None and out.accepted.body
    return n / (time.process_time() - start)


def bench_decode(n: int = 20_000, batch: int = 500) -> float:
    """The pipeline's whole pure step (:func:`gateway.ingest.decode.decode`): topic,
    validation, one-pass encoding, the batch's duplicates, the accounting events."""
    from gateway.ingest.decode import decode
    from gateway.ingest.message import Message

    msgs = [Message(TOPIC, payload(i), NOW, 1, i) for i in range(n)]
    start = time.process_time()
    for i in range(0, n, batch):
        out = decode(msgs[i:i + batch], "bdnc-lab", "livinglab/v1", account=True)
        assert len(out.accepted) == len(msgs[i:i + batch])
    return n / (time.process_time() - start)


def bench_put(rounds: int = 200) -> float:
    msgs = []
    for i in range(rounds * 100):
        acc = validate_telemetry(TOPIC, payload(i), "bdnc-lab", NOW, "air-0001",
                                 encode=True).accepted
        assert acc is not None
        msgs.append(acc)
    with tempfile.TemporaryDirectory() as d:
        buf = DurableBuffer(Path(d) / "buffer.sqlite", max_bytes=1 << 30)
        try:
            start = time.process_time()
            for r in range(rounds):
                batch: list[Accepted] = msgs[r * 100:(r + 1) * 100]
                buf.put(batch, NOW)
            return rounds * 100 / (time.process_time() - start)
        finally:
            buf.close()


def main() -> None:
    print(f"validate + encode : {bench_validate():10,.0f} msg/s (CPU time, 3 samples, 8 readings)")
    print(f"one pass          : {bench_one_pass():10,.0f} msg/s (validate_telemetry(encode=True))")
    print(f"decode (x500)     : {bench_decode():10,.0f} msg/s (topic, validate, encode, "
          "accounting)")
    print(f"buffer put (x100) : {bench_put():10,.0f} msg/s (CPU time, dedup + insert, one commit)")


if __name__ == "__main__":
    main()
