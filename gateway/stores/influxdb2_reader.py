"""Reader for ``influxdb2`` stores: Flux for InfluxDB 2.x, or VictoriaMetrics' export API.

VictoriaMetrics accepts the v2 write API but has no Flux; it is read through
``/api/v1/export`` (JSON lines, one series per line: ``metric`` labels,
``values``, ``timestamps`` in ms). Which one: ``[export] influxdb2_reader``;
``auto`` asks ``/health``: VictoriaMetrics answers the text ``OK``, InfluxDB 2 a
JSON document.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from protocols.config import StoreSection

from .reading import Reading, StoreUnreadable, split_metric

__all__ = ["FluxReader", "VictoriaMetricsReader", "detect", "flux_query", "vm_match"]


def _rfc3339(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.") \
        + f"{ms % 1000:03d}Z"


def _flux_str(s: str) -> str:
    return json.dumps(s)  # a Flux string literal: double quotes, backslash escapes


def flux_query(bucket: str, since_ms: int, until_ms: int, domains: Sequence[str],
               devices: Sequence[str]) -> str:
    """The Flux query of one window (range stop is exclusive, like the other readers)."""
    ms = " or ".join(f"r._measurement == {_flux_str(d)}" for d in domains)
    q = (f"from(bucket: {_flux_str(bucket)})\n"
         f"  |> range(start: {_rfc3339(since_ms)}, stop: {_rfc3339(until_ms)})\n"
         f"  |> filter(fn: (r) => {ms})\n")
    if devices:
        ds = " or ".join(f"r.device == {_flux_str(d)}" for d in devices)
        q += f"  |> filter(fn: (r) => {ds})\n"
    q += ('  |> filter(fn: (r) => types.isType(v: r._value, type: "float"))\n'
          '  |> keep(columns: ["_time", "_measurement", "_field", "_value", "site", "device", '
          '"sensor"])\n')
    return 'import "types"\n' + q


#: string fields of the contract: VictoriaMetrics keeps numbers only and stores a string
#: field as the number it reads from it (0 for "0.2.0"), so those series are not readings
_STRING_FIELDS = frozenset({("device", "fw")}
                           # third turn: more strings, and `{m}_info_v` matched by `{m}_.+`
                           | {("device", f) for f in ("board", "update_state", "update_version",
                                                      "update_reason", "info_v")}
                           | {("gateway", "version"), ("gateway", "info_v")}
                           | {("station", f) for f in ("board", "sensors", "room", "zone",
                                                       "note", "info_v")})


def vm_match(domains: Sequence[str], devices: Sequence[str]) -> str:
    """The series selector of ``/api/v1/export`` for the domains (and devices)."""
    sel = '__name__=~"(' + "|".join(domains) + ')_.+"'
    if devices:
        sel += ',device=~"' + "|".join(devices) + '"'
    return "{" + sel + "}"


def detect(url: str, timeout: float) -> str:
    """``victoriametrics`` or ``flux``, from what ``/health`` answers."""
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/health", timeout=timeout) as r:
            body = r.read(200).decode("utf-8", "replace").strip()
    except urllib.error.HTTPError as exc:
        body = exc.read(200).decode("utf-8", "replace").strip()
    except (urllib.error.URLError, OSError) as exc:
        raise StoreUnreadable(f"store at {url} is unreachable: {exc} "
                              "(start it or check [store] url)") from None
    return "victoriametrics" if body == "OK" else "flux"


class VictoriaMetricsReader:
    def __init__(self, cfg: StoreSection) -> None:
        self._url = cfg.url.rstrip("/")
        self._timeout = cfg.timeout_s * 6
        self._what = f"VictoriaMetrics at {cfg.url}"

    def check(self) -> None:
        detect(self._url, self._timeout)

    def window(self, since_ms: int, until_ms: int, domains: Sequence[str],
               devices: Sequence[str]) -> list[Reading]:
        q = urllib.parse.urlencode({"match[]": vm_match(domains, devices),
                                    "start": f"{since_ms / 1000:.3f}",
                                    "end": f"{(until_ms - 1) / 1000:.3f}"})
        out: list[Reading] = []
        try:
            with urllib.request.urlopen(f"{self._url}/api/v1/export?{q}",
                                        timeout=self._timeout) as resp:
                for line in resp:
                    if line.strip():
                        self._series(json.loads(line), since_ms, until_ms, domains, out)
        except urllib.error.HTTPError as exc:
            raise StoreUnreadable(f"{self._what} answered {exc.code}: "
                                  f"{exc.read(200).decode('utf-8', 'replace')}") from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise StoreUnreadable(f"{self._what}: {exc} (start it or check [store] url)") \
                from None
        return out

    @staticmethod
    def _series(obj: dict[str, Any], since_ms: int, until_ms: int, domains: Sequence[str],
                out: list[Reading]) -> None:
        m = obj["metric"]
        split = split_metric(str(m.get("__name__", "")), domains)
        if split is None:
            return
        domain, quantity = split
        if (domain, quantity) in _STRING_FIELDS:
            return
        site, device, sensor = m.get("site", ""), m.get("device", ""), m.get("sensor", "")
        for t, v in zip(obj["timestamps"], obj["values"], strict=True):
            if since_ms <= t < until_ms and isinstance(v, (int, float)):
                out.append(Reading(int(t), site, device, sensor, domain, quantity, float(v)))

    def close(self) -> None:
        pass


class FluxReader:
    """InfluxDB 2.x through ``influxdb-client``'s streaming query API."""

    def __init__(self, cfg: StoreSection) -> None:
        from influxdb_client.client.influxdb_client import InfluxDBClient

        self._cfg = cfg
        self._client: Any = InfluxDBClient(url=cfg.url, token=cfg.token, org=cfg.org,
                                           timeout=int(cfg.timeout_s * 6000))
        self._what = f"InfluxDB 2 bucket '{cfg.bucket}' at {cfg.url}"

    def check(self) -> None:
        try:
            ok = self._client.ping()
        except Exception as exc:  # noqa: BLE001 - the client raises many kinds
            raise StoreUnreadable(f"{self._what}: {exc} (start it or check [store] url)") \
                from None
        if not ok:
            raise StoreUnreadable(f"{self._what} does not answer /ping "
                                  "(start it or check [store] url)")

    def window(self, since_ms: int, until_ms: int, domains: Sequence[str],
               devices: Sequence[str]) -> list[Reading]:
        query = flux_query(self._cfg.bucket, since_ms, until_ms, domains, devices)
        out: list[Reading] = []
        try:
            for rec in self._client.query_api().query_stream(query, org=self._cfg.org):
                v = rec.values
                t = int(rec.get_time().timestamp() * 1000 + 0.5)
                out.append(Reading(t, v.get("site") or "", v.get("device") or "",
                                   v.get("sensor") or "", rec.get_measurement(),
                                   rec.get_field(), float(rec.get_value())))
        except Exception as exc:  # noqa: BLE001 - translated at the boundary
            raise StoreUnreadable(f"{self._what}: {exc} (check [store] url, token, org, "
                                  "bucket)") from None
        return out

    def close(self) -> None:
        self._client.close()
