"""The pipeline with a fake MQTT sink and a fake buffer: ack strictly after commit."""

from __future__ import annotations

import asyncio
import json

from gateway.ingest.decode import STATUS_BOOT, decode
from gateway.ingest.pipeline import Pipeline
from gateway.ops.metrics import Metrics
from tests.gateway.helpers import (
    PREFIX,
    SITE,
    FakeBuffer,
    FakeSink,
    msg,
    points_of,
    run_async,
    topic,
)

REJ = f"{PREFIX}/{SITE}/_gateway/gw-test/rejected"


def make(buffer: FakeBuffer, sink: FakeSink, **kw: object) -> tuple[Pipeline, Metrics]:
    m = Metrics()
    p = Pipeline(site=SITE, prefix=PREFIX, rejected_topic=REJ, buffer=buffer, sink=sink,
                 metrics=m, full_poll_s=0.01, full_wait_s=0.05, **kw)  # type: ignore[arg-type]
    return p, m


def sample(m: Metrics, name: str, **labels: str) -> float:
    return m.registry.get_sample_value(name, labels) or 0.0


def test_decode_classifies_telemetry_status_rejections_and_other_sites() -> None:
    msgs = [
        msg("air-0001", 0),
        msg("air-0001", 0),  # same (device, boot, seq) in one batch
        msg("air-0002", 0, payload=b"not json"),
        msg("air-0003", 0, site="other-site"),
        msg("air-0004", 0, kind="status", payload=b'{"state":"online","rssi":-60}'),
        msg("air-0005", 0, payload=json.dumps({"v": 1, "device": "air-0005", "boot": 1,
                                               "seq": 3, "samples": [
                                                   {"sensor": "scd41", "ts": 1795351934.0,
                                                    "values": {"co2": 99999, "humidity": 40}}]
                                               }).encode()),
    ]
    d = decode(msgs, SITE, PREFIX)
    assert [(a.device, a.boot) for a in d.accepted] == [
        ("air-0001", 1), ("air-0004", STATUS_BOOT), ("air-0005", 1)]
    assert d.batch_duplicates == 1
    assert d.ignored == 1
    assert sorted(r.reason for r, _ in d.rejected) == ["not_json", "out_of_range"]
    status = d.accepted[1]
    assert status.points[0].measurement == "device"
    assert ("online", 1.0) in status.points[0].fields
    assert {s.device for s in d.sightings} == {"air-0001", "air-0004", "air-0005"}


def test_bad_topic_under_the_site_is_a_rejection() -> None:
    m = msg("air-0001", 0)
    bad = type(m)(topic=f"{PREFIX}/{SITE}/air-0001/nonsense", payload=b"{}",
                  received_at=m.received_at)
    d = decode([bad], SITE, PREFIX)
    assert [r.reason for r, _ in d.rejected] == ["bad_topic"]
    assert d.rejected[0][1] == b"{}"


@run_async
async def test_acks_only_after_the_put_committed() -> None:
    events: list[str] = []
    buf, sink = FakeBuffer(events=events), FakeSink(events=events)
    p, m = make(buf, sink)
    for i in range(5):
        p.submit(msg("air-0001", i, mid=i + 1))
    assert await p.commit_once()
    assert events == ["put", "ack:1", "ack:2", "ack:3", "ack:4", "ack:5"]
    assert len(buf.points) == 5 and not p.pending
    assert sample(m, "livinglab_messages_accepted_total") == 5
    assert sample(m, "livinglab_messages_received_total", kind="telemetry") == 5


@run_async
async def test_buffer_full_holds_acks_then_commits_when_room() -> None:
    buf, sink = FakeBuffer(full=True), FakeSink()
    p, m = make(buf, sink)
    for i in range(3):
        p.submit(msg("air-0001", i, mid=i + 1))
    assert not await p.commit_once()
    assert not await p.commit_once()
    assert sink.acked == [] and len(p.pending) == 3 and p.full
    assert sample(m, "livinglab_buffer_full_total") == 1  # once per episode
    buf.full = False
    assert await p.commit_once()
    assert sink.acked == [1, 2, 3] and not p.full
    assert len(buf.points) == 3


@run_async
async def test_run_loop_retries_after_buffer_full() -> None:
    buf, sink = FakeBuffer(full=True), FakeSink()
    p, _ = make(buf, sink)
    stop = asyncio.Event()
    task = asyncio.create_task(p.run(stop))
    p.submit(msg("air-0001", 0, mid=7))
    await asyncio.sleep(0.1)
    assert sink.acked == [] and buf.puts >= 2
    buf.full = False
    for _ in range(200):
        if sink.acked:
            break
        await asyncio.sleep(0.01)
    stop.set()
    await asyncio.wait_for(task, 2)
    assert sink.acked == [7]


@run_async
async def test_stale_generation_acks_are_dropped_and_redelivery_is_deduped() -> None:
    buf, sink = FakeBuffer(full=True), FakeSink(generation=1)
    p, m = make(buf, sink)
    p.submit(msg("air-0001", 0, mid=5, gen=1))
    assert not await p.commit_once()
    sink.generation = 2  # reconnected: the broker will redeliver mid 5 on generation 2
    p.submit(msg("air-0001", 0, mid=9, gen=2))
    buf.full = False
    assert await p.commit_once()
    assert sink.stale == [5] and sink.acked == [9]
    assert len(buf.points) == 1
    assert sample(m, "livinglab_duplicates_total") == 1


@run_async
async def test_rejections_published_quarantined_and_counted() -> None:
    buf, sink = FakeBuffer(), FakeSink()
    p, m = make(buf, sink)
    p.submit(msg("air-0001", 0, mid=1, payload=b'{"v": 2}'))
    p.submit(msg("air-0001", 1, mid=2))
    assert await p.commit_once()
    assert sink.acked == [1, 2]
    assert [json.loads(pl)["reason"] for t, pl in sink.published if t == REJ] == ["missing_field"]
    assert buf.quarantined[0][1] == b'{"v": 2}'
    assert sample(m, "livinglab_rejections_total", reason="missing_field") == 1


@run_async
async def test_other_sites_and_config_topics_are_acked_and_ignored() -> None:
    buf, sink = FakeBuffer(), FakeSink()
    p, _ = make(buf, sink)
    p.submit(msg("air-0001", 0, mid=1, site="elsewhere"))
    p.submit(msg("air-0001", 0, mid=2, kind="config", payload=b'{"interval_s": 5}'))
    assert await p.commit_once()
    assert sink.acked == [1, 2] and buf.points == [] and buf.quarantined == []


@run_async
async def test_stop_intake_leaves_new_messages_unacked() -> None:
    buf, sink = FakeBuffer(), FakeSink()
    p, _ = make(buf, sink)
    p.submit(msg("air-0001", 0, mid=1))
    p.stop_intake()
    p.submit(msg("air-0001", 1, mid=2))
    assert await p.drain(1.0)
    assert sink.acked == [1]


def test_topic_helper_matches_contract() -> None:
    assert topic("air-0001") == f"{PREFIX}/{SITE}/air-0001/telemetry"


def test_raw_payload_quarantined_once_per_message() -> None:
    body = json.dumps({"v": 1, "device": "air-0001", "boot": 1, "seq": 0, "samples": [
        {"sensor": "scd41", "ts": 1795351934.0,
         "values": {"co2": -5, "humidity": 400, "temperature": 20}}]}).encode()
    d = decode([msg("air-0001", 0, payload=body)], SITE, PREFIX)
    assert [r.reason for r, _ in d.rejected] == ["out_of_range", "out_of_range"]
    assert [p for _, p in d.rejected] == [body, b""]
    assert len(d.accepted) == 1 and d.accepted[0].body is not None
    assert len(d.accepted[0].body.splitlines()) == 1


def test_status_buffers_its_device_info_companion_and_the_will_none() -> None:
    """Third turn: a status with strings is buffered with ``device_info`` (strings as
    tags, v = 1.0, same time); the will is ``online`` = 0.0 alone; telemetry unchanged."""
    status = json.dumps({"state": "online", "fw": "1.1.0", "board": "esp32", "boot": 2,
                         "interval_s": 60}).encode()
    d = decode([msg("air-1", 0, payload=status, kind="status", received_at=1_795_351_940.5),
                msg("air-2", 0, payload=b'{"state":"offline"}', kind="status"),
                msg("air-3", 0)], SITE, PREFIX)
    by_dev = {a.device: points_of(a) for a in d.accepted}
    point, info = by_dev["air-1"]
    assert dict(point.fields)["interval_s"] == 60.0 and dict(point.fields)["boot"] == 2.0
    assert info.measurement == "device_info" and info.time_ms == point.time_ms == 1795351940500
    assert dict(info.tags) == {"site": SITE, "device": "air-1", "fw": "1.1.0", "board": "esp32"}
    (will,) = by_dev["air-2"]
    assert will.measurement == "device" and will.fields == (("online", 0.0),)
    assert [p.measurement for p in by_dev["air-3"]] == ["air"]
