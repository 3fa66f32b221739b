"""Hostile input for the whole intake: hypothesis strategies and a real-buffer harness.

Shared by ``tests/gateway/test_fuzz.py`` (bounded, in the fast set) and ``python -m
bench.fuzz`` (the long run). The harness is the gateway's intake as it runs: the
pipeline with the real SQLite buffer, the delivery accounting and the last-seen
table, an in-memory broker sink; it can be restarted on the same files.

The strategies reach what a broken board or an attacker on the lab network sends:
integers to 2^200 (and the edges 2^31, 2^62, 2^63-1, 2^64), ``NaN``/``Infinity``
and ``1e400`` written raw, lone surrogates and NUL in strings and keys, strings of
100,000 characters, nesting thousands deep, invalid UTF-8, 16 KiB messages full of
rejected values, serial lines, and site-defined quantities.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from gateway.accounting.delivery import HourRow
from gateway.accounting.lastseen import LastSeen, lastseen_path
from gateway.accounting.read import read_hours
from gateway.app import load_accounting
from gateway.buffer.core import DurableBuffer
from gateway.buffer.quarantine import storable
from gateway.buffer.schema import QuarantineItem
from gateway.ingest.mqtt import Message
from gateway.ingest.pipeline import Pipeline
from gateway.ingest.serial import parse_serial_line
from gateway.ops.metrics import Metrics
from protocols import Registry, site_quantity
from tests.gateway.helpers import PREFIX, SITE, T0, FakeSink

REJECTED = f"{PREFIX}/{SITE}/_gateway/gw-fuzz/rejected"
PORT = "/dev/ttyFUZZ"
#: the fuzzed serial port may speak for these ids only
SERIAL_IDS = {PORT: frozenset({"ser-0001", "ser-0002"})}
REGISTRY = Registry([site_quantity("noise_level", "dB", "sound", 0, 140),
                     site_quantity("no2", "ug/m3", "air", 0, 1000)])


class Raw(str):
    """A JSON fragment written as it is (``NaN``, ``1e400``, ``[[[[``...)."""


def render(v: Any) -> str:
    """JSON text for ``v``, raw fragments included; strings ASCII-escaped, so a lone
    surrogate becomes ``\\ud800`` in the text, as a device would write it."""
    if isinstance(v, Raw):
        return str(v)
    if isinstance(v, float) and v != v:
        return "NaN"
    if isinstance(v, float) and v in (float("inf"), float("-inf")):
        return "Infinity" if v > 0 else "-Infinity"
    if isinstance(v, list):
        return "[" + ",".join(render(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ",".join(json.dumps(str(k)) + ":" + render(x) for k, x in v.items()) + "}"
    return json.dumps(v)


# -- leaves -------------------------------------------------------------------------------

EDGE_INTS = [0, -1, 2**31 - 1, 2**31, 2**53 + 1, 2**62, 2**63 - 1, 2**63, 2**64, 2**200,
             -(2**63), -(2**200)]
huge_ints = st.one_of(st.sampled_from(EDGE_INTS), st.integers(-(2**200), 2**200))
raw_numbers = st.sampled_from([Raw(x) for x in (
    "NaN", "Infinity", "-Infinity", "1e400", "-1e400", "1e-400", "2e308", "-0", "0e0",
    "1E+2", "01", "+1", ".5", "1.", "0x10", "1_000")])
nasty_chars = st.sampled_from(["\ud800", "\udfff", "\udc00", "\x00", "\x1f", "\x7f", "\u2028",
                               "\ufeff", "\U0001f600", "\"", "\\", "\n", "é"])
nasty_text = st.lists(st.one_of(nasty_chars, st.text(max_size=4)), max_size=6).map("".join)
long_text = st.sampled_from([100_000, 20_000, 65_536]).map(lambda n: "x" * n)
strings = st.one_of(nasty_text, long_text, st.sampled_from(["online", "offline", "scd41"]))
numbers = st.one_of(huge_ints, raw_numbers,
                    st.floats(allow_nan=True, allow_infinity=True),
                    st.floats(-50, 50000))
deep = st.integers(30, 3000).flatmap(lambda d: st.sampled_from([
    Raw("[" * d + "]" * d), Raw('{"a":' * d + "1" + "}" * d), Raw("[" * d)]))
leaf = st.one_of(st.none(), st.booleans(), numbers, strings, deep)
junk = st.recursive(leaf, lambda c: st.one_of(
    st.lists(c, max_size=4), st.dictionaries(strings, c, max_size=4)), max_leaves=6)

QUANTITY_NAMES = ["co2", "temperature", "humidity", "pm2_5", "noise_level", "no2", "bogus",
                  "\ud800", "\x00", "x" * 300]


# -- messages -----------------------------------------------------------------------------

_NOW = Raw("__NOW__")  # a sample time that is fine: T0 - i for ts, i for age
_names = st.sampled_from(QUANTITY_NAMES)
_good = st.floats(0, 100)
_when = st.one_of(st.just(_NOW), numbers)
_sensors = st.sampled_from(["scd41", "bad sensor", "\ud800"])
_counts = st.sampled_from([0, 1, 2, 5, 40, 300])
_fields = st.sampled_from(["v", "device", "boot", "seq", "samples", "extra", "\ud800"])
_not_json = st.one_of(st.binary(max_size=64), st.just(b"\xff\xfe" + b"{" * 20))


@st.composite
def _sample(draw: st.DrawFn, bad: bool) -> str:
    """One sample, rendered, with ``__NOW__`` where its time is to be filled in."""
    values: dict[str, Any] = {}
    for _ in range(draw(st.integers(1, 6))):
        values[draw(_names)] = draw(numbers) if bad else draw(_good)
    sample: dict[str, Any] = {"sensor": draw(_sensors), "values": values}
    sample["age" if draw(st.booleans()) else "ts"] = draw(_when)
    return render(sample)


@st.composite
def hostile_telemetry(draw: st.DrawFn, device: str) -> bytes:
    """A telemetry message for ``device`` with any part replaced by something hostile;
    up to 300 samples cycling through a few drawn ones (cheap to draw, and 40 samples
    of bad values is what ``too_many_rejections`` is for)."""
    if draw(st.integers(0, 9)) == 0:
        return draw(_not_json)
    doc: dict[str, Any] = {"v": 1, "device": device, "boot": draw(huge_ints), "seq":
                           draw(huge_ints)}
    n = draw(_counts)
    kinds = [draw(_sample(draw(st.booleans()))) for _ in range(draw(st.integers(1, 3)))]
    doc["samples"] = Raw("[" + ",".join(
        kinds[i % len(kinds)].replace('"ts":__NOW__', f'"ts":{T0 - i!r}')
        .replace('"age":__NOW__', f'"age":{float(i)!r}') for i in range(n)) + "]")
    for _ in range(draw(st.integers(0, 2))):  # replace a field, or add one
        doc[draw(_fields)] = draw(junk)
    return render(doc).encode()


@st.composite
def hostile_status(draw: st.DrawFn) -> bytes:
    doc: dict[str, Any] = {"state": draw(st.sampled_from(["online", "offline", "asleep"]))}
    for key in draw(st.lists(st.sampled_from(["fw", "board", "ip", "boot", "heap_free",
                                              "rssi", "uptime", "update", "x"]), max_size=4)):
        if key == "update":
            doc[key] = {"version": draw(strings), "state": draw(st.sampled_from(
                ["staged", "refused", "\ud800"])), "reason": draw(strings)}
        else:
            doc[key] = draw(st.one_of(strings, numbers, junk))
    if draw(st.integers(0, 9)) == 0:
        return draw(st.sampled_from([b"", b"null", b"[]", b"\xc3\x28"]))
    return render(doc).encode()


@st.composite
def valid_telemetry(draw: st.DrawFn, device: str, seq: int) -> tuple[bytes, int]:
    """A message every rule accepts, and how many points it must store (one per
    sample and domain; the site's ``noise_level`` is its own ``sound`` domain)."""
    samples = []
    points = 0
    for i in range(draw(st.integers(1, 3))):
        values: dict[str, float] = {"co2": draw(st.floats(0, 40000)),
                                    "temperature": draw(st.floats(-40, 85))}
        if draw(st.booleans()):
            values["noise_level"] = draw(st.floats(0, 140))
        if draw(st.booleans()):
            values["no2"] = float(draw(st.integers(0, 1000)))
        points += 2 if "noise_level" in values else 1
        samples.append({"sensor": "scd41", "ts": T0 - 60 + seq * 0.001 + i * 10,
                        "values": values})
    doc = {"v": 1, "device": device, "boot": draw(st.integers(0, 2**31 - 1)), "seq": seq,
           "samples": samples}
    return json.dumps(doc).encode(), points


@dataclass
class Sent:
    """One fuzzed message and what the oracle expects of it."""

    msg: Message
    valid_points: int | None = None  # a valid telemetry message: its points must land
    accounted: bool = False  # a telemetry message the accounting must count

    def __repr__(self) -> str:  # short: a failing example prints readably
        m = self.msg
        body = m.payload if len(m.payload) <= 160 else \
            m.payload[:120] + f"...({len(m.payload)} bytes)".encode()
        return f"Sent({m.topic[:100]!r}, {body!r}, port={m.port!r}, valid={self.valid_points})"


def _msg(topic: str, payload: bytes, mid: int, port: str = "") -> Message:
    return Message(topic, payload, T0, qos=0 if port else 1, mid=0 if port else mid,
                   generation=1, port=port)


_TAGS = itertools.count(1)


@st.composite
def traffic(draw: st.DrawFn, max_size: int = 12) -> list[Sent]:
    """Valid and hostile messages interleaved; every hostile one on its own device id
    (its reports and quarantine row are then its own)."""
    out: list[Sent] = []
    tag = next(_TAGS)  # ids unique across examples: the bench shares one intake
    for i in range(draw(st.integers(1, max_size))):
        mid = tag * 1000 + i + 1
        kind = draw(st.sampled_from(["valid", "telemetry", "telemetry", "status", "serial",
                                     "topic"]))
        dev = f"hx{tag}-{i}"
        if kind == "valid":
            ok = f"ok{tag}-{i}"
            payload, n = draw(valid_telemetry(ok, i))
            out.append(Sent(_msg(f"{PREFIX}/{SITE}/{ok}/telemetry", payload, mid), n, True))
        elif kind == "telemetry":
            out.append(Sent(_msg(f"{PREFIX}/{SITE}/{dev}/telemetry",
                                 draw(hostile_telemetry(dev)), mid), accounted=True))
        elif kind == "status":
            out.append(Sent(_msg(f"{PREFIX}/{SITE}/{dev}/status", draw(hostile_status()), mid)))
        elif kind == "serial":
            sub = draw(st.sampled_from(["telemetry", "status"]))
            free = [d for d in ("ser-0001", "ser-0002", "ser-0003")
                    if f"{PREFIX}/{SITE}/{d}/{sub}" not in {x.msg.topic for x in out}]
            claimed = draw(st.sampled_from([*free, dev]))  # one message per topic
            body = draw(hostile_telemetry(claimed)) if sub == "telemetry" \
                else draw(hostile_status())
            line = f"{claimed}/{sub} ".encode() + body + b"\r\n"
            parsed = parse_serial_line(line, SITE, PREFIX)
            if parsed is not None:
                allowed = claimed in SERIAL_IDS[PORT]
                out.append(Sent(_msg(parsed[0], parsed[1], mid, PORT),
                                accounted=allowed and sub == "telemetry"))
        else:
            level = nasty_text.filter(lambda s: s not in ("telemetry", "status"))
            t = draw(st.one_of(
                level.map(f"{PREFIX}/{SITE}/{dev}/".__add__),
                st.just(f"{PREFIX}/{SITE}/{dev}/telemetry/extra"),
                st.just(f"{PREFIX}/{SITE}/-{dev}/telemetry")))
            out.append(Sent(_msg(t, draw(st.binary(max_size=32)), mid)))
    return out


# -- the harness --------------------------------------------------------------------------

@dataclass
class Intake:
    """The gateway's intake on real files in its own directory; ``restart`` reopens them."""

    directory: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="intake-")))
    sink: FakeSink = field(default_factory=FakeSink)
    metrics: Metrics = field(default_factory=Metrics)

    def __post_init__(self) -> None:
        self.loop = asyncio.new_event_loop()  # one loop: its worker threads are reused
        self._open()

    @property
    def path(self) -> Path:
        return self.directory / "buffer.sqlite"

    def _open(self) -> None:
        self.buffer = DurableBuffer(self.path, 1 << 30, quarantine_max=1_000_000,
                                    quarantine_max_bytes=1 << 30)
        self.accounting = load_accounting(self.path)
        self.lastseen = LastSeen(lastseen_path(self.directory))
        self.pipeline = Pipeline(site=SITE, prefix=PREFIX, rejected_topic=REJECTED,
                                 buffer=self.buffer, sink=self.sink, metrics=self.metrics,
                                 lastseen=self.lastseen, accounting=self.accounting,
                                 registry=REGISTRY, serial_ids=SERIAL_IDS)

    def feed(self, msgs: list[Message], flush_delivery: bool = True) -> None:
        """Submit and commit everything (the intake must take it all), then buffer the
        accounting's ``delivery`` points as the gateway does every 30 s."""
        for m in msgs:
            self.pipeline.submit(m)
        run = self.loop.run_until_complete
        assert run(self.pipeline.drain(60)), "the intake did not take every message"
        if flush_delivery:
            run(self.pipeline.flush_delivery(T0 + 1))

    def restart(self) -> None:
        self.close()
        self._open()

    def close(self) -> None:
        self.lastseen.flush()
        self.lastseen.close()
        self.buffer.close()

    def remove(self) -> None:
        self.loop.close()
        shutil.rmtree(self.directory, ignore_errors=True)

    def lines(self) -> list[bytes]:
        """The points waiting for the store, the accounting's own ``delivery`` left out."""
        batch = self.buffer.get_batch(10**7)
        return [] if batch is None else [ln for ln in batch.lines
                                         if not ln.startswith(b"delivery,")]

    def quarantine(self) -> list[QuarantineItem]:
        return self.buffer.list_quarantine(10**7)

    def hours(self) -> list[HourRow]:
        return read_hours(self.path, 0, 4e9)


@dataclass(frozen=True)
class Mark:
    """Where the intake stood before a batch of traffic: the oracle checks what came after."""

    published: int
    acked: int
    quarantine_id: int
    received: Counter[str]


def mark(intake: Intake, sent: list[Sent] = ()) -> Mark:  # type: ignore[assignment]
    """The intake's counters now; ``received`` for the devices ``sent`` speaks for."""
    rows = intake.buffer.list_quarantine(1)
    devices = {s.msg.topic.split("/")[3] for s in sent if s.accounted}
    received = Counter[str]()
    for h in (read_hours(intake.path, 0, 4e9, sorted(devices)) if devices else ()):
        received[h.device] += h.received
    return Mark(len(intake.sink.published), len(intake.sink.acked),
                rows[0].id if rows else 0, received)


def check_traffic(intake: Intake, sent: list[Sent], since: Mark) -> None:
    """The invariants for ``sent``, fed to ``intake`` after ``since``."""
    lines = intake.lines()
    for s in sent:  # every valid message lands, whole
        if s.valid_points is not None:
            dev = s.msg.topic.split("/")[3]
            got = [ln for ln in lines if f",device={dev},".encode() in ln]
            assert len(got) == s.valid_points, (dev, got)
    acked = sorted(s.msg.mid for s in sent if s.msg.qos)
    assert sorted(intake.sink.acked[since.acked:]) == acked  # every message acked, once
    reports = [json.loads(p) for t, p in intake.sink.published[since.published:]
               if t == REJECTED]
    rows = [q for q in intake.buffer.list_quarantine(len(sent) + 1)
            if q.id > since.quarantine_id]
    for s in sent:
        if s.valid_points is not None:
            continue
        # as a report carries it (JSON joins two lone surrogates into one character)
        topic = json.loads(json.dumps(s.msg.topic))
        mine = [r for r in reports if r["topic"] == topic]
        assert len(mine) <= 17, (s.msg.topic, len(mine))  # bounded: 16 + one summary
        assert all(r["reason"] != "too_many_rejections" for r in mine[:-1])
        if mine and mine[-1]["reason"] == "too_many_rejections":
            assert len(mine) == 17 and mine[-1]["count"] >= 1
        if len(mine) > 1:  # several reports: only for samples and values of one message
            assert all(r["reason"] in _PART_REASONS for r in mine), mine
        stored = [q for q in rows if q.topic == storable(s.msg.topic)[:512]]
        assert len(stored) == (1 if mine else 0), (s.msg.topic[:80], mine, stored)
        assert all(len(q.payload) <= 2048 and q.length == len(s.msg.payload) for q in stored)
    assert not [r for r in reports if r["reason"] == "internal_error"], reports
    accounted = Counter(s.msg.topic.split("/")[3] for s in sent if s.accounted)
    now = mark(intake, sent).received
    assert {d: n - since.received[d] for d, n in now.items()
            if n != since.received[d]} == accounted


_PART_REASONS = {"ts_in_future", "ts_too_old", "unknown_quantity", "mistyped_value",
                 "not_finite", "out_of_range", "too_many_rejections"}


def snapshot(intake: Intake) -> tuple[list[bytes], list[int], list[HourRow]]:
    return intake.lines(), [q.id for q in intake.quarantine()], intake.hours()


def check_restart(intake: Intake, last: list[Sent]) -> None:
    """Restart on the same files: everything is still there; the broker then hands the
    last messages over again (as after a crash): no crash, no new points."""
    before = snapshot(intake)
    intake.restart()
    assert snapshot(intake) == before
    intake.feed([s.msg for s in last])
    assert intake.lines() == before[0]
    payload = json.dumps({"v": 1, "device": "after-0001", "boot": 1, "seq": len(before[0]),
                          "samples": [{"sensor": "scd41", "ts": T0 - 1,
                                       "values": {"co2": 500}}]}).encode()
    intake.feed([_msg(f"{PREFIX}/{SITE}/after-0001/telemetry", payload, 10**6)])
    assert len(intake.lines()) == len(before[0]) + 1


def run_case(sent: list[Sent]) -> None:
    """One example on a fresh intake: feed, check, restart, redeliver, check."""
    intake = Intake()
    try:
        since = mark(intake, sent)
        intake.feed([s.msg for s in sent])
        check_traffic(intake, sent, since)
        check_restart(intake, sent)
    finally:
        intake.close()
        intake.remove()
