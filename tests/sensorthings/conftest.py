"""A city in a real SQLite store, served by ``livinglab sensorthings`` (a subprocess).

The city is the centre reader's (tests/centre/data.py: three sites, a move, a
retirement, a device never seen) plus one dense Datastream of 2,500 readings
(several pages at the maximum ``$top``). ``City.readings`` is what the devices
sent: the expected answer of every test.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.stores.reading import Reading
from protocols.config import parse_config
from tests.centre.data import City, build, write
from tests.servers import die_with_parent, stop_pid, wait_for

DENSE = "alpha.p1.sht4x.temperature"
DENSE_N = 2500


def city() -> City:
    c = build()
    for i in range(DENSE_N):  # every 2 s, values that survive JSON exactly
        c.reading("alpha", "p1", "sht4x", "air", {"temperature": 20.0 + i / 1024}, c.t0 + i * 2000)
    return c


def ds_of(r: Reading) -> str:
    return f"{r.site}.{r.device}.{r.sensor}.{r.quantity}"


@dataclass
class Api:
    url: str
    city: City
    config: Path
    store: dict[str, Any]

    def get(self, path: str, **params: Any) -> httpx.Response:
        return httpx.get(f"{self.url}/{path}", params=params, timeout=30)

    def json(self, path: str, **params: Any) -> Any:
        r = self.get(path, **params)
        assert r.status_code == 200, r.text
        return r.json()

    def all(self, path: str, **params: Any) -> list[dict[str, Any]]:
        """Every entity of a collection, following nextLinks (each must carry a
        $skiptoken, never a $skip)."""
        body = self.json(path, **params)
        out = list(body["value"])
        pages = 1
        while "@iot.nextLink" in body:
            link = body["@iot.nextLink"]
            assert "$skiptoken=" in link and "$skip=" not in link
            r = httpx.get(link, timeout=30)
            assert r.status_code == 200, r.text
            body = r.json()
            out += body["value"]
            pages += 1
            assert pages < 1000
        return out


def write_city(base: Path) -> tuple[City, dict[str, Any]]:
    store = {"kind": "sqlite", "path": str(base / "r.sqlite")}
    c = city()
    write(parse_config({"store": store}, base, env={}, need_site=False).store, c.points)
    return c, store


def start(config: Path) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "sensorthings", "--config", str(config),
         "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=die_with_parent, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.stdout is not None
    line = wait_for(proc.stdout.readline, timeout=60, what="sensorthings ready line")
    assert line.startswith("sensorthings: http://"), line
    return proc, line.split()[1]


@pytest.fixture(scope="package")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    base = tmp_path_factory.mktemp("sta")
    c, store = write_city(base)
    config = base / "sta.toml"
    config.write_text(f'[store]\nkind = "sqlite"\npath = "{store["path"]}"\n')
    proc, url = start(config)
    try:
        yield Api(url, c, config, store)
    finally:
        stop_pid(proc.pid)
