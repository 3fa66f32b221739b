"""Bytes on disk per reading in influxd and VictoriaMetrics: the city's sizing figures.

``python -m bench.city_sizing [--devices 200] [--hours 6] [--interval 30]``

Builds the points a gateway writes for a city's devices (the load model of
``livinglab city simulate``, devices/city_model.py, through the gateway's own
validation: the same measurements, tags, fields and values), at the firmware's
default rates (telemetry every 30 s, a status every 60 s; the status point with
the third turn's fields and its ``device_info`` companion), with the real spacing
in time, and writes them to a fresh influxd (1.x, TSM) and a fresh
VictoriaMetrics. Once each has flushed and compacted (its data dir stops
shrinking), prints one JSON document: points, values, line-protocol bytes,
bytes on disk, and per device and day. docs/city.md has the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from devices.city_model import Walk, plan_city, status_payload, telemetry_payload
from protocols import validate_telemetry
from protocols.lineprotocol import Point, encode_lines, make_point
from protocols.validate_status import validate_status
from tests.servers import Influxd, VictoriaMetrics, running

BATCH = 5000


class CompactingInfluxd(Influxd):
    """influxd that snapshots its cache and fully compacts within seconds (not 10 min
    / 4 h), so the size measured is the TSM files a long-running server settles on."""

    def command(self) -> list[str]:
        cmd = super().command()
        conf = self.dir / "influxdb.conf"
        text = conf.read_text().replace(
            "  query-log-enabled = false\n",
            '  query-log-enabled = false\n  cache-snapshot-write-cold-duration = "2s"\n'
            '  compact-full-write-cold-duration = "5s"\n')
        conf.write_text(text)
        return cmd


class CityPoints:
    """Every point the gateways write for ``devices`` devices, step by step from
    ``hours`` ago, in time order (the walks go on from one call to the next)."""

    def __init__(self, devices: int, hours: float, interval_s: int, status_s: int = 60) -> None:
        per_site = 50
        plans = plan_city(max(1, -(-devices // per_site)), min(per_site, devices))
        self.devs = [d for p in plans for d in p.devices][:devices]
        self.walks = {d.device: Walk(d.seed) for d in self.devs}
        self.t0 = time.time() - hours * 3600
        self.steps = int(hours * 3600 / interval_s)
        self.interval_s = interval_s
        self.every = max(1, status_s // interval_s)

    def points(self, first: int, last: int) -> Iterator[Point]:
        for k in range(first, last):
            ts = self.t0 + k * self.interval_s
            for i, d in enumerate(self.devs):
                t = ts + (i % self.interval_s)  # devices are not in step
                body = telemetry_payload(d, k, t, self.walks[d.device], self.interval_s)
                out = validate_telemetry(f"livinglab/v1/{d.site}/{d.device}/telemetry", body,
                                         d.site, t + 0.2, d.device)
                assert out.accepted is not None and not out.rejections, out.rejections
                yield from out.accepted.points
                if k % self.every == 0:
                    yield from status_points(d, k * self.interval_s, self.interval_s, t + 0.3)


def status_points(d: object, uptime: float, interval_s: int, t: float) -> list[Point]:
    """The device point (third turn: also interval_s, boot, dropped, sensor_errors) and its
    ``device_info`` companion carrying the strings."""
    from devices.city_model import SimDevice

    assert isinstance(d, SimDevice)
    body = status_payload(d, uptime, interval_s, -61, 90_000 + int(uptime) % 997)
    record, rej = validate_status(f"livinglab/v1/{d.site}/{d.device}/status", body, d.site, t,
                                  d.device)
    assert record is not None and rej is None
    p = record.point
    floats = {k: v for k, v in p.fields if isinstance(v, float)}
    floats.update(interval_s=float(interval_s), boot=float(d.boot), dropped=0.0,
                  sensor_errors=0.0)
    tags = dict(p.tags)
    info = make_point("device_info", {**tags, "fw": str(record.fields.get("fw", "")),
                                      "board": d.board}, {"v": 1.0}, p.time_ms)
    return [make_point("device", tags, floats, p.time_ms), info]


def _du(path: Path) -> int:
    out = subprocess.run(["du", "-s", "--block-size=1", str(path)], capture_output=True,
                         text=True, check=True)
    return int(out.stdout.split()[0])


def _settle(paths: list[Path], nudge: object = None, quiet_s: float = 10.0,
            limit_s: float = 300.0) -> int:
    """The data dirs' size once it has not changed for ``quiet_s`` (bounded)."""
    end = time.monotonic() + limit_s
    last, since = -1, time.monotonic()
    while time.monotonic() < end:
        if callable(nudge):
            nudge()
        size = sum(_du(p) for p in paths if p.exists())
        if size != last:
            last, since = size, time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            return size
        time.sleep(1.0)
    return last


def _post(url: str, body: bytes) -> None:
    req = urllib.request.Request(url, data=body, method="POST")
    with urllib.request.urlopen(req, timeout=120) as r:
        r.read()


@dataclass
class Tally:
    points: int = 0
    values: int = 0
    lp_bytes: int = 0


def run(devices: int, hours: float, interval_s: int, base: Path) -> dict[str, object]:
    """Two halves: the first creates the series and the stores' fixed files; the
    second's growth on disk, per value, is the steady-state cost."""
    gen = CityPoints(devices, hours, interval_s)
    half = gen.steps // 2
    result: dict[str, object] = {
        "devices": devices, "hours": hours, "interval_s": interval_s, "status_s": 60,
        "machine": f"{platform.machine()}, {platform.python_version()}, {os.cpu_count()} cpus"}
    with running(CompactingInfluxd(base / "influxd")) as influx, \
            running(VictoriaMetrics(base / "vm")) as vm:
        influx.query("CREATE DATABASE city")
        targets = {"influxd": f"{influx.url}/write?db=city&precision=ms",
                   "victoriametrics": f"{vm.url}/write?precision=ms"}
        dirs = {"influxd": [influx.dir / "data", influx.dir / "wal"],
                "victoriametrics": [vm.dir / "data"]}
        nudge = {"influxd": None, "victoriametrics": vm.flush}
        write_s = dict.fromkeys(targets, 0.0)
        sizes: dict[str, list[int]] = {name: [] for name in targets}
        tallies = []
        for first, last in ((0, half), (half, gen.steps)):
            tally = Tally()
            batch: list[Point] = []

            def flush(batch: list[Point] = batch, tally: Tally = tally) -> None:
                body = encode_lines(batch)
                tally.lp_bytes += len(body)
                for name, url in targets.items():
                    t = time.monotonic()
                    _post(url, body)
                    write_s[name] += time.monotonic() - t
                batch.clear()

            for p in gen.points(first, last):
                batch.append(p)
                tally.points += 1
                tally.values += sum(1 for _, v in p.fields if isinstance(v, float))
                if len(batch) >= BATCH:
                    flush()
            if batch:
                flush()
            for name in targets:
                sizes[name].append(_settle(dirs[name], nudge=nudge[name]))
            tallies.append(tally)
    t2 = tallies[1]
    secs = (gen.steps - half) * interval_s
    per_day = 86400 / secs / devices
    total_values = sum(t.values for t in tallies)
    result.update(points=sum(t.points for t in tallies), values=total_values,
                  values_per_s_per_device=round(t2.values / secs / devices, 4),
                  points_per_s_per_device=round(t2.points / secs / devices, 4),
                  line_protocol_bytes_per_device_day=round(t2.lp_bytes * per_day))
    for name, (s1, s2) in sizes.items():
        result[name] = {
            "bytes_on_disk_after_each_half": [s1, s2],
            "bytes_per_value": round((s2 - s1) / t2.values, 3),
            "bytes_per_device_day": round((s2 - s1) * per_day),
            "write_values_per_s_this_machine": round(total_values / write_s[name])}
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", type=int, default=200)
    ap.add_argument("--hours", type=float, default=6.0)
    ap.add_argument("--interval", type=int, default=30)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="city-sizing-") as d:
        print(json.dumps(run(args.devices, args.hours, args.interval, Path(d)), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
