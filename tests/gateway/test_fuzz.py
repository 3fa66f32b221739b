"""Hypothesis: malformed topics and payloads never break the pipeline, and valid
messages interleaved with them still land in the (real) durable buffer; hostile
traffic (tests/gateway/hostile.py) never stops the whole intake."""

from __future__ import annotations

import asyncio
import itertools
import json
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.buffer.core import DurableBuffer
from gateway.ingest.decode import decode
from gateway.ingest.mqtt import Message
from gateway.ingest.pipeline import Pipeline
from gateway.ops.metrics import Metrics
from tests.gateway import hostile
from tests.gateway.helpers import PREFIX, SITE, T0, FakeSink, telemetry, topic

_seq = itertools.count()

json_leaf = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                      st.text(max_size=10))
json_value = st.recursive(json_leaf, lambda c: st.one_of(
    st.lists(c, max_size=4), st.dictionaries(st.text(max_size=8), c, max_size=4)), max_leaves=12)


@st.composite
def near_valid(draw: st.DrawFn) -> bytes:
    """A valid telemetry document with one part replaced by junk."""
    doc: dict[str, Any] = json.loads(telemetry("air-0001", 1, 0))
    key = draw(st.sampled_from(["v", "device", "boot", "seq", "samples", "extra"]))
    if draw(st.booleans()):
        doc[key] = draw(json_value)
    else:
        doc["samples"][0][draw(st.sampled_from(["sensor", "ts", "age", "values"]))] = \
            draw(json_value)
    return json.dumps(doc).encode()


payloads = st.one_of(st.binary(max_size=200), near_valid(),
                     json_value.map(lambda v: json.dumps(v).encode()))
topics = st.one_of(
    st.text(max_size=40),
    st.builds(lambda d, k: f"{PREFIX}/{SITE}/{d}/{k}", st.text(max_size=12),
              st.sampled_from(["telemetry", "status", "config", "x", ""])),
    st.just(topic("air-0002")), st.just(topic("air-0002", "status")),
    st.builds(lambda s: f"{PREFIX}/{s}/air-0003/telemetry", st.text(max_size=10)))


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(topics, payloads), max_size=20))
def test_decode_never_raises(items: list[tuple[str, bytes]]) -> None:
    msgs = [Message(t, p, T0 + 1, qos=1, mid=i + 1, generation=1)
            for i, (t, p) in enumerate(items)]
    d = decode(msgs, SITE, PREFIX)
    assert sum(d.kinds.values()) == len(msgs)  # every message classified exactly once
    assert len(d.accepted) + d.batch_duplicates <= d.kinds["telemetry"] + d.kinds["status"]
    for r, raw in d.rejected:
        assert json.loads(r.to_json())["reason"] == r.reason and isinstance(raw, bytes)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(topics, payloads), min_size=1, max_size=15))
def test_valid_traffic_interleaved_with_junk_lands_in_the_buffer(
        items: list[tuple[str, bytes]]) -> None:
    with tempfile.TemporaryDirectory() as d:
        buf = DurableBuffer(Path(d) / "b.sqlite", 2**30)
        sink = FakeSink()
        pipe = Pipeline(site=SITE, prefix=PREFIX, rejected_topic="rej", buffer=buf, sink=sink,
                        metrics=Metrics())
        valid = []
        mid = 0
        for t, p in items:
            mid += 1
            pipe.submit(Message(t, p, T0 + 1, qos=1, mid=mid, generation=1))
            seq = next(_seq)
            mid += 1
            valid.append(seq)
            pipe.submit(Message(topic("air-0001"), telemetry("air-0001", 7, seq, ts=T0 + seq),
                                T0 + 1, qos=1, mid=mid, generation=1))
        assert asyncio.run(pipe.drain(5))
        assert sorted(sink.acked) == list(range(1, mid + 1))  # every message acked once
        lines = buf.get_batch(100_000)
        assert lines is not None
        got = {ln for ln in lines.lines if b"device=air-0001," in ln}
        assert len(got) == len(valid)
        buf.close()


# -- the whole intake under hostile input (issue 15; the long run: python -m bench.fuzz) --

@settings(max_examples=30, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.large_base_example])
@given(hostile.traffic())
def test_hostile_traffic_never_stops_the_intake(sent: list[hostile.Sent]) -> None:
    """Telemetry, status, serial lines and site quantities with integers to 2^200,
    NaN/Infinity/1e400, lone surrogates, NUL, 100,000-character strings and deep
    nesting, through the real buffer with the delivery accounting: the intake takes
    everything, every valid message lands, every rejected one is reported (at most 16
    + 1 per message) and quarantined once, and a restart and a redelivery after it
    neither crash nor lose nor duplicate anything."""
    hostile.run_case(sent)
