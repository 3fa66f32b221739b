"""The centre's servers for tests: vmagent in front of two VictoriaMetrics nodes (the
HA layout of docs/city.md) and Prometheus Alertmanager. Same rules as
:mod:`tests.servers`: free 127.0.0.1 ports, temp dirs, stopped by PID, bounded waits.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.servers import (
    HOST,
    Server,
    VictoriaMetrics,
    http_ok,
    running,
)


@dataclass
class VMAgent(Server):
    """vmagent (in Debian's victoria-metrics package) in front of VictoriaMetrics nodes.

    Accepts the InfluxDB line protocol on ``/write`` and ``/api/v2/write`` (and answers
    ``/ping`` and ``/health``, so a gateway's ``influxdb2`` store takes it for a
    server), keeps a persistent queue per remote on disk under ``dir/buffer``, and
    replicates every sample to each of ``remotes`` (their ``/api/v1/write``): a node
    that is down gets its backlog when it is back.
    """

    remotes: tuple[str, ...] = ()

    def command(self) -> list[str]:
        return ["vmagent", f"-httpListenAddr={HOST}:{self.port}",
                f"-remoteWrite.tmpDataPath={self.dir}/buffer",
                *(f"-remoteWrite.url={u}/api/v1/write" for u in self.remotes),
                "-remoteWrite.flushInterval=100ms", "-loggerLevel=WARN"]

    def ready(self) -> bool:
        return http_ok(f"{self.url}/health")


@dataclass
class VMCluster:
    """The HA layout: vmagent replicating to two VictoriaMetrics nodes (each with
    ``-dedup.minScrapeInterval=1ms``); readers use ``read_urls`` = both nodes."""

    agent: VMAgent
    nodes: tuple[VictoriaMetrics, VictoriaMetrics]

    @property
    def read_urls(self) -> tuple[str, ...]:
        return tuple(n.url for n in self.nodes)

    def store(self) -> dict[str, object]:
        """The ``[store]`` table of a gateway (or reader) on this layout."""
        return {"kind": "influxdb2", "url": self.agent.url, "flavour": "victoriametrics",
                "bucket": "livinglab", "read_urls": list(self.read_urls)}


@contextmanager
def vm_ha(base: Path) -> Iterator[VMCluster]:
    """Two VictoriaMetrics nodes and a vmagent writing to both, stopped by PID."""
    with running(VictoriaMetrics(base / "vm1")) as a, running(VictoriaMetrics(base / "vm2")) as b, \
            running(VMAgent(base / "vmagent", remotes=(a.url, b.url))) as agent:
        yield VMCluster(agent, (a, b))


@dataclass
class Alertmanager(Server):
    """Prometheus Alertmanager (Debian's ``prometheus-alertmanager``), clustering off.

    Every alert goes to one webhook receiver (``webhook``, a URL) with ``send_resolved``
    and short group timers, so a test sees a notification within about a second.
    """

    webhook: str = "http://127.0.0.1:9/none"
    group_wait: str = "0s"
    group_interval: str = "1s"

    def command(self) -> list[str]:
        conf = self.dir / "alertmanager.yml"
        conf.write_text(
            "route:\n"
            "  receiver: hook\n"
            "  group_by: ['alertname', 'site', 'device', 'gateway', 'quantity']\n"
            f"  group_wait: {self.group_wait}\n"
            f"  group_interval: {self.group_interval}\n"
            "  repeat_interval: 4h\n"
            "receivers:\n"
            "  - name: hook\n"
            "    webhook_configs:\n"
            f"      - url: '{self.webhook}'\n"
            "        send_resolved: true\n", encoding="utf-8")
        return ["prometheus-alertmanager", f"--config.file={conf}",
                f"--storage.path={self.dir}/data", f"--web.listen-address={HOST}:{self.port}",
                "--cluster.listen-address=", "--log.level=warn"]

    def ready(self) -> bool:
        return http_ok(f"{self.url}/-/ready")

    def alerts(self, **query: str) -> list[dict[str, object]]:
        """``GET /api/v2/alerts`` (e.g. ``active="true"``)."""
        q = "?" + urllib.parse.urlencode(query) if query else ""
        with urllib.request.urlopen(f"{self.url}/api/v2/alerts{q}", timeout=10) as r:
            body: list[dict[str, object]] = json.loads(r.read())
            return body
