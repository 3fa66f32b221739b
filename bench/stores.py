"""Counting what landed in the store, per phase, exactly.

Each phase publishes from its own device names (``{tag}-NNN``), so a phase's
points are counted by a device-name filter, and "landed" means the exact
expected number: fewer is a loss, more is a duplicate write (VictoriaMetrics
runs WITHOUT dedup here so that a point written twice counts twice).

VictoriaMetrics makes rows queryable only after its buffers flush (seconds,
more for new series), so the clock of a phase is its ingest counter
``vm_rows_inserted_total{type="influx"}`` (one row per reading, for /write and
/api/v2/write alike), and the exact count is taken by PromQL afterwards.
influxd answers queries with every acknowledged write, so there the count
itself is the clock.
"""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Protocol

from tests.servers import Influxd, VictoriaMetrics

DB = "livinglab"


def _get_json(url: str, data: dict[str, str] | None = None) -> dict[str, object]:
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    with urllib.request.urlopen(urllib.request.Request(url, data=body), timeout=30) as r:
        result: dict[str, object] = json.loads(r.read())
        return result


class VMNoDedup(VictoriaMetrics):
    """VictoriaMetrics keeping every row, so duplicates show in the count."""

    def command(self) -> list[str]:
        return [c for c in super().command() if not c.startswith("-dedup")]


class Counter(Protocol):
    name: str
    url: str

    def progress(self) -> int:
        """Readings ingested in total (all phases); cheap, polled every 50-100 ms."""

    def count(self, tag: str) -> tuple[int, int]:
        """(points, readings) of the devices ``{tag}-*``, exact, once ingestion stopped."""


class VMCounter:
    name = "victoria-metrics"

    def __init__(self, url: str) -> None:
        self.url = url

    def progress(self) -> int:
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=30) as r:
            for line in r.read().decode().splitlines():
                if line.startswith('vm_rows_inserted_total{type="influx"}'):
                    return int(float(line.split()[-1]))
        return 0

    def _count(self, selector: str) -> int:
        r = _get_json(f"{self.url}/api/v1/query",
                      {"query": f"sum(count_over_time({selector}[1d]))", "nocache": "1"})
        res = r["data"]["result"]  # type: ignore[index]
        return int(float(res[0]["value"][1])) if res else 0

    def count(self, tag: str, wait: float = 30.0) -> tuple[int, int]:
        """Flush, then count until the figure is stable and matches what was ingested."""
        dev = f'device=~"{tag}-.*"'
        end = time.monotonic() + wait
        last: tuple[int, int] | None = None
        t_same = time.monotonic()
        while True:
            urllib.request.urlopen(f"{self.url}/internal/force_flush", timeout=30).close()
            now = (self._count(f'{{__name__=~"air_co2|light_cct|flow_volume",{dev}}}'),
                   self._count(f'{{__name__=~"(air|light|flow)_.+",{dev}}}'))
            if now != last:
                last, t_same = now, time.monotonic()
            if time.monotonic() - t_same > 4 or time.monotonic() > end:
                return now
            time.sleep(0.5)


class InfluxCounter:
    name = "influxd-1.6"

    def __init__(self, url: str) -> None:
        self.url = url

    def _q(self, q: str) -> dict[str, object]:
        return _get_json(f"{self.url}/query", {"db": DB, "q": q})

    def _sum(self, where: str) -> tuple[int, int]:
        r = self._q(f"SELECT count(*) FROM air,light,flow {where}")
        points = readings = 0
        for res in r.get("results", []):  # type: ignore[attr-defined]
            if "error" in res:
                return 0, 0  # database not created yet
            for s in res.get("series", []) or []:
                counts = [int(v) for v in s["values"][0][1:] if v is not None]
                points += max(counts, default=0)
                readings += sum(counts)
        return points, readings

    def progress(self) -> int:
        return self._sum("")[1]

    def count(self, tag: str, wait: float = 0.0) -> tuple[int, int]:
        return self._sum(f"WHERE device =~ /^{tag}-/")


def start_store(kind: str, root: Path) -> tuple[VictoriaMetrics | Influxd, Counter]:
    """Start a fresh store under ``root``; kind is ``vm`` or ``influx``."""
    if kind == "vm":
        vm = VMNoDedup(root / "vm")
        vm.start()
        return vm, VMCounter(vm.url)
    ix = Influxd(root / "influxd")
    ix.start()
    urllib.request.urlopen(urllib.request.Request(
        f"{ix.url}/query", data=urllib.parse.urlencode(
            {"q": f'CREATE DATABASE "{DB}"'}).encode()), timeout=10).close()
    return ix, InfluxCounter(ix.url)
