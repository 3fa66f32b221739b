"""The store hop over https, verified with [store] ca_file: influxdb2 (v2 write API,
VictoriaMetrics) and influxdb1 (influxd); a certificate from another CA is refused."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from gateway.stores import StoreTransient, make_store
from protocols.config import StoreSection
from provisioning import tls
from tests.servers import Influxd, VictoriaMetrics, running
from tests.tls.conftest import server_cert

pytestmark = pytest.mark.slow

LINE = b"air,device=air-0001,sensor=scd41,site=lab co2=612 1795351934120\n"


def write(cfg: StoreSection) -> None:
    store = make_store(cfg)

    async def go() -> None:
        try:
            await store.ensure_ready()
            await store.write(LINE, 1)
        finally:
            await store.aclose()
    asyncio.run(go())


def test_influxdb2_kind_over_https(tmp_path: Path, site_tls: tls.TlsFiles,
                                   rogue_tls: tls.TlsFiles) -> None:
    ca, cert, key = server_cert(site_tls, tmp_path / "vm-tls", ["localhost"])
    with running(VictoriaMetrics(tmp_path / "vm", tls=(cert, key, ca))) as vm:
        write(StoreSection(kind="influxdb2", url=vm.url, ca_file=ca, timeout_s=5))
        series = vm.export()
        with pytest.raises(StoreTransient, match="CERTIFICATE_VERIFY_FAILED"):
            write(StoreSection(kind="influxdb2", url=vm.url, ca_file=rogue_tls.ca_cert,
                               timeout_s=5))
    assert [s["values"] for s in series] == [[612]]


def test_influxdb1_refuses_a_certificate_from_another_ca(
        tmp_path: Path, site_tls: tls.TlsFiles, rogue_tls: tls.TlsFiles) -> None:
    _, cert, key = server_cert(site_tls, tmp_path / "influx-tls", ["localhost"])
    with running(Influxd(tmp_path / "influxd", tls=(cert, key, site_tls.ca_cert))) as influxd:
        write(StoreSection(kind="influxdb1", url=influxd.url, database="ll",
                           ca_file=site_tls.ca_cert, timeout_s=5))
        assert influxd.points("ll", "air")[0]["co2"] == 612
        with pytest.raises(StoreTransient, match="CERTIFICATE_VERIFY_FAILED"):
            write(StoreSection(kind="influxdb1", url=influxd.url, database="ll",
                               ca_file=rogue_tls.ca_cert, timeout_s=5))
