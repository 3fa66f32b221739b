"""The HA layout (docs/city.md): gateway -> vmagent -> two VictoriaMetrics nodes.

One node is killed (SIGKILL) mid-run while the gateway keeps sending: the
surviving node holds exactly every reading written, a reader with ``read_urls``
= both nodes keeps answering from it, and the killed node, restarted, gets its
backlog from vmagent's on-disk queue; what it lost itself in the kill (its last
seconds in memory) is copied back from the replica.
"""

from __future__ import annotations

import importlib
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.gateway.helpers import GatewayProc, Publisher, Row, wait_subscribed, write_config
from tests.servers import Mosquitto, free_port, wait_for
from tests.servers_centre import VMCluster

pytestmark = pytest.mark.slow

MATCH = '{__name__=~"air_.+"}'


def export_rows(url: str) -> list[Row]:
    """Every ``air`` reading on one node (raising URLError/OSError when it is down)."""
    with urllib.request.urlopen(f"{url}/internal/force_flush", timeout=5):
        pass
    q = urllib.parse.urlencode({"match[]": MATCH})
    with urllib.request.urlopen(f"{url}/api/v1/export?{q}", timeout=10) as r:
        rows: list[Row] = []
        for line in r.read().splitlines():
            s = json.loads(line)
            m = s["metric"]
            for t, v in zip(s["timestamps"], s["values"], strict=True):
                rows.append((m["device"], m["sensor"], int(t), m["__name__"][4:], float(v)))
        return sorted(rows)


def read_with_failover(urls: tuple[str, ...]) -> tuple[str, list[Row]]:
    """What a centre reader does with ``read_urls``: the first node that answers."""
    last: Exception | None = None
    for url in urls:
        try:
            return url, export_rows(url)
        except (urllib.error.URLError, OSError) as exc:
            last = exc
    raise AssertionError(f"no read_url answered: {last}")


def centre_rows(config: Path, since_ms: int) -> list[Row] | None:
    """The same readings through the centre's reader (``make_centre_reader``, which tries
    ``read_urls`` in order); None until that reader is in this tree (branch ``reader``)."""
    try:
        readers = importlib.import_module("gateway.stores.readers")
    except ImportError:
        return None
    from protocols.config import load_config

    reader = readers.make_centre_reader(load_config(config, need_site=False))
    try:
        return sorted((r.device, r.sensor, r.time_ms, r.quantity, r.value)
                      for r in reader.readings(since_ms, int(time.time() * 1000) + 60_000,
                                               domains=("air",)))
    finally:
        reader.close()


def _safe_rows(url: str) -> list[Row]:
    try:
        return export_rows(url)
    except (urllib.error.URLError, OSError):
        return []


def test_one_node_lost_nothing_lost(tmp_path: Path, mosquitto: Mosquitto,
                                    vm_cluster: VMCluster) -> None:
    node1, node2 = vm_cluster.nodes
    health = free_port()
    cfg = write_config(tmp_path / "gw.toml", mqtt_port=mosquitto.port, health_port=health,
                       store=vm_cluster.store())
    gw = GatewayProc(cfg, health)
    gw.start()
    pub = Publisher(mosquitto.port)
    try:
        wait_subscribed(gw)
        base = time.time() - 3600
        for seq in range(100):
            pub.send("air-0001", 1, seq, base)
        pub.wait_all()
        expected = sorted(pub.expected)
        wait_for(lambda: export_rows(node1.url) == expected, 30, what="first 100 on node 1")

        before = set(expected)
        node1.kill()  # kill -9 mid-run
        for seq in range(100, 400):
            pub.send("air-0001", 1, seq, base)
            if seq % 50 == 0:
                pub.send("air-0002", 1, seq, base, samples=3)
        pub.wait_all()
        expected = sorted(pub.expected)
        assert len(expected) == 2 * 400 + 6 * 6

        wait_for(lambda: export_rows(node2.url) == expected, 30,
                 what="every reading on the surviving node")
        assert len(export_rows(node2.url)) == len(expected)  # exact: none lost, none doubled
        url, rows = read_with_failover(vm_cluster.read_urls)
        assert url == node2.url and rows == expected
        since_ms = int(base * 1000) - 60_000
        assert centre_rows(cfg, since_ms) in (None, expected)  # node 1 dead: node 2 answers

        # Same port, same data dir: vmagent replays its on-disk queue. What the node had
        # itself taken in the last seconds before a kill -9 may be gone (VictoriaMetrics
        # keeps recent data in memory for about a second): the replica has it.
        node1.start()
        during = set(expected) - before
        t0 = time.monotonic()
        wait_for(lambda: during <= set(_safe_rows(node1.url)), 90, interval=1.0,
                 what="the restarted node catching up from vmagent's queue")
        print(f"node 1 caught up {time.monotonic() - t0:.1f} s after its restart; "
              f"kept {len(before & set(_safe_rows(node1.url)))} of {len(before)} "
              "readings it had before the kill")
        url, rows = read_with_failover(vm_cluster.read_urls)
        assert url == node1.url and set(rows) <= set(expected)

        # The repair docs/city.md gives: copy a window from the other node in the native
        # format (what vmctl vm-native does); dedup makes the overlap harmless.
        q = urllib.parse.urlencode({"match[]": '{__name__!=""}', "start": int(base) - 60})
        with urllib.request.urlopen(f"{node2.url}/api/v1/export/native?{q}", timeout=30) as r:
            native = r.read()
        req = urllib.request.Request(f"{node1.url}/api/v1/import/native", data=native,
                                     method="POST")
        with urllib.request.urlopen(req, timeout=30) as r:
            assert r.status == 204
        wait_for(lambda: _safe_rows(node1.url) == expected, 30, interval=0.5,
                 what="node 1 equal to node 2 after the copy")
        assert centre_rows(cfg, since_ms) in (None, expected)
    finally:
        pub.close()
        gw.kill()
