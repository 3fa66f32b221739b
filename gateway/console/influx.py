"""The console's readers for the HTTP stores: InfluxQL (InfluxDB 1.x), MetricsQL
(VictoriaMetrics, which answers the ``influxdb2`` write API but has no Flux) and
Flux (InfluxDB 2.x). See :mod:`gateway.console.queries` for the questions asked."""

from __future__ import annotations

import base64
import json
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any

from protocols.config import StoreSection
from protocols.quantities import Registry

from .queries import LATEST_WINDOW_S, Latest, Series, StoreUnavailable, check_id, domain_of

__all__ = ["FluxReader", "InfluxQLReader", "VictoriaReader", "is_victoria"]

_QUANTITY = re.compile(r"^[a-z0-9_]{1,32}$")


# -- HTTP helpers --------------------------------------------------------------------

class _Http:
    def __init__(self, url: str, timeout: float, what: str,
                 headers: dict[str, str] | None = None) -> None:
        self.base = url.rstrip("/")
        self.timeout = timeout
        self.what = what
        self.headers = headers or {}

    def get(self, path: str, params: Mapping[str, str] | None = None) -> bytes:
        url = self.base + path + ("?" + urllib.parse.urlencode(params) if params else "")
        req = urllib.request.Request(url, headers=self.headers)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return bytes(resp.read())
        except urllib.error.HTTPError as exc:
            body = exc.read(300).decode("utf-8", "replace").strip()
            raise StoreUnavailable(f"{self.what} answered HTTP {exc.code}: {body} "
                                   "(check [store] url and credentials)") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise StoreUnavailable(f"{self.what} is not reachable: {reason} "
                                   "(is it running? check [store] url)") from None

    def get_json(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        try:
            return json.loads(self.get(path, params))
        except ValueError:
            raise StoreUnavailable(f"{self.what} answered something that is not JSON") from None


# -- InfluxDB 1.x (InfluxQL) -----------------------------------------------------------

class InfluxQLReader:
    """InfluxDB 1.x: InfluxQL over ``/query``, ``GROUP BY time()`` for downsampling."""

    def __init__(self, cfg: StoreSection, registry: Registry) -> None:
        self.registry = registry
        #: every measurement a reading can land in, quoted for a FROM clause
        self._from = ",".join(f'"{d}"' for d in registry.domains)
        headers = {}
        if cfg.username or cfg.password:
            cred = base64.b64encode(f"{cfg.username}:{cfg.password}".encode()).decode()
            headers["Authorization"] = f"Basic {cred}"
        self.what = f"InfluxDB 1 database '{cfg.database}' at {cfg.url}"
        self.db = cfg.database
        self.http = _Http(cfg.url, min(cfg.timeout_s, 10.0), self.what, headers)

    def _series(self, q: str) -> list[dict[str, Any]]:
        doc = self.http.get_json("/query", {"db": self.db, "q": q, "epoch": "ms"})
        out: list[dict[str, Any]] = []
        for result in doc.get("results", []):
            if "error" in result:
                if "database not found" in str(result["error"]):
                    return []
                raise StoreUnavailable(f"{self.what}: {result['error']}")
            out.extend(result.get("series", []))
        return out

    def ping(self) -> None:
        self.http.get("/ping")

    def latest(self, site: str, window_s: int = LATEST_WINDOW_S,
               device: str | None = None) -> Latest:
        out: Latest = {}
        dev = f" AND device = '{check_id(device)}'" if device else ""
        q = (f"SELECT last(*) FROM {self._from} WHERE site = '{check_id(site)}'{dev} "
             f"AND time > now() - {int(window_s)}s GROUP BY device")
        for s in self._series(q):
            device = str(s.get("tags", {}).get("device", ""))
            for row in s.get("values", []):
                for col, v in zip(s["columns"], row, strict=False):
                    if col.startswith("last_") and isinstance(v, (int, float)):
                        out.setdefault(device, {})[col[5:]] = (float(v), 0)
        return out

    def series(self, site: str, device: str, quantity: str, since_ms: int, until_ms: int,
               step_ms: int) -> Series:
        if not _QUANTITY.match(quantity):
            return Series()
        q = (f'SELECT mean("{quantity}") FROM "{domain_of(self.registry, quantity)}" WHERE '
             f"site = '{check_id(site)}' AND device = '{check_id(device)}' AND "
             f"time >= {since_ms}ms AND time < {until_ms}ms "
             f"GROUP BY time({step_ms}ms), sensor fill(none)")
        per: dict[str, list[tuple[int, float]]] = {}
        for s in self._series(q):
            sensor = str(s.get("tags", {}).get("sensor", ""))
            per[sensor] = [(int(t), float(v)) for t, v in s.get("values", []) if v is not None]
        return Series.align(per)

# -- VictoriaMetrics (Prometheus query API) ---------------------------------------------

def _split_name(registry: Registry, name: str) -> tuple[str, str]:
    """``air_co2`` -> (air, co2); ``flow_flow_rate`` -> (flow, flow_rate); with a site
    domain ``water_quality``, ``water_quality_ph`` -> (water_quality, ph). A domain may
    hold ``_`` itself, so the split is the one the registry knows; failing that (a
    quantity since dropped from the config) the longest domain that prefixes ``name``."""
    prefixed = [d for d in registry.domains if name.startswith(d + "_")]
    for d in prefixed:
        if registry.domain_of(name[len(d) + 1:]) == d:
            return d, name[len(d) + 1:]
    if prefixed:
        d = max(prefixed, key=len)
        return d, name[len(d) + 1:]
    return "", ""


class VictoriaReader:
    """VictoriaMetrics, written through its InfluxDB endpoints: series are named
    ``{measurement}_{field}`` with the tags as labels; read through
    ``/api/v1/query`` and ``/api/v1/query_range`` (MetricsQL), no Flux."""

    def __init__(self, cfg: StoreSection, registry: Registry) -> None:
        self.registry = registry
        self._names = f'__name__=~"({"|".join(registry.domains)})_.+"'
        self.what = f"VictoriaMetrics at {cfg.url}"
        headers = {"Authorization": f"Bearer {cfg.token}"} if cfg.token else {}
        self.http = _Http(cfg.url, min(cfg.timeout_s, 10.0), self.what, headers)

    def _result(self, path: str, params: dict[str, str]) -> list[dict[str, Any]]:
        doc = self.http.get_json(path, params)
        if doc.get("status") != "success":
            raise StoreUnavailable(f"{self.what}: {doc.get('error', doc)}")
        return list(doc.get("data", {}).get("result", []))

    def _selector(self, site: str, device: str | None = None, name: str | None = None) -> str:
        parts = [f'__name__="{name}"' if name else self._names,
                 f'site="{check_id(site)}"']
        if device:
            parts.append(f'device="{check_id(device)}"')
        return "{" + ",".join(parts) + "}"

    def ping(self) -> None:
        self.http.get("/health")

    def latest(self, site: str, window_s: int = LATEST_WINDOW_S,
               device: str | None = None) -> Latest:
        q = f"last_over_time({self._selector(site, device)}[{int(window_s)}s])"
        out: Latest = {}
        # keep_metric_names: MetricsQL drops __name__ from rollup results otherwise
        for r in self._result("/api/v1/query", {"query": f"{q} keep_metric_names"}):
            metric = r.get("metric", {})
            _, quantity = _split_name(self.registry, str(metric.get("__name__", "")))
            device = str(metric.get("device", ""))
            if quantity and device:
                out.setdefault(device, {})[quantity] = (float(r["value"][1]), 0)
        return out

    def series(self, site: str, device: str, quantity: str, since_ms: int, until_ms: int,
               step_ms: int) -> Series:
        if not _QUANTITY.match(quantity):
            return Series()
        sel = self._selector(site, device, f"{domain_of(self.registry, quantity)}_{quantity}")
        step_s = max(step_ms // 1000, 1)
        rows = self._result("/api/v1/query_range", {
            "query": f"avg_over_time({sel}[{step_s}s])", "start": f"{since_ms / 1000:.3f}",
            "end": f"{until_ms / 1000:.3f}", "step": f"{step_s}s"})
        per = {str(r.get("metric", {}).get("sensor", "")):
               [(int(float(t) * 1000), float(v)) for t, v in r.get("values", [])]
               for r in rows}
        return Series.align(per)

# -- InfluxDB 2.x (Flux) ----------------------------------------------------------------

class FluxReader:
    """InfluxDB 2.x through influxdb-client's query API (Flux)."""

    def __init__(self, cfg: StoreSection, registry: Registry) -> None:
        from influxdb_client.client.influxdb_client import InfluxDBClient

        self.registry = registry
        self._doms = " or ".join(f"r._measurement == {json.dumps(d)}" for d in registry.domains)
        self.what = f"InfluxDB 2 bucket '{cfg.bucket}' at {cfg.url}"
        self.bucket = cfg.bucket
        self.client: Any = InfluxDBClient(url=cfg.url, token=cfg.token, org=cfg.org,
                                          timeout=int(min(cfg.timeout_s, 10.0) * 1000),
                                          retries=False)

    def _records(self, flux: str) -> list[Any]:
        from influxdb_client.rest import ApiException
        from urllib3.exceptions import HTTPError as Urllib3Error

        try:
            tables = self.client.query_api().query(flux)
        except ApiException as exc:
            raise StoreUnavailable(f"{self.what} answered HTTP {exc.status}: {exc.reason} "
                                   "(check [store] url, org, bucket and token)") from None
        except (Urllib3Error, OSError) as exc:
            raise StoreUnavailable(f"{self.what} is not reachable: {exc}") from None
        return [rec for table in tables for rec in table.records]

    def _from(self, site: str, start: str, device: str | None = None) -> str:
        dev = f' and r.device == "{check_id(device)}"' if device else ""
        return (f'from(bucket: {json.dumps(self.bucket)}) |> range(start: {start}) '
                f'|> filter(fn: (r) => r.site == "{check_id(site)}"{dev} and ({self._doms}))')

    def ping(self) -> None:
        if not self.client.ping():
            raise StoreUnavailable(f"{self.what} does not answer /ping (is it running?)")

    def latest(self, site: str, window_s: int = LATEST_WINDOW_S,
               device: str | None = None) -> Latest:
        out: Latest = {}
        flux = (self._from(site, f"-{int(window_s)}s", device)
                + ' |> group(columns: ["device", "_field"]) |> last()')
        for rec in self._records(flux):
            out.setdefault(str(rec.values.get("device")), {})[str(rec.get_field())] = (
                float(rec.get_value()), int(rec.get_time().timestamp() * 1000))
        return out

    def series(self, site: str, device: str, quantity: str, since_ms: int, until_ms: int,
               step_ms: int) -> Series:
        if not _QUANTITY.match(quantity):
            return Series()
        flux = (self._from(site, f"time(v: {since_ms * 1_000_000})", device)
                .replace("range(start: ", f"range(stop: time(v: {until_ms * 1_000_000}), start: ")
                + f' |> filter(fn: (r) => r._field == "{quantity}")'
                + ' |> group(columns: ["sensor"])'
                + f" |> aggregateWindow(every: {step_ms}ms, fn: mean, createEmpty: false,"
                + " timeSrc: \"_start\")")
        per: dict[str, list[tuple[int, float]]] = {}
        for rec in self._records(flux):
            per.setdefault(str(rec.values.get("sensor", "")), []).append(
                (int(rec.get_time().timestamp() * 1000), float(rec.get_value())))
        return Series.align(per)

def is_victoria(cfg: StoreSection) -> bool:
    """VictoriaMetrics answers the Prometheus build-info endpoint; InfluxDB 2 does not."""
    try:
        _Http(cfg.url, 3.0, cfg.url).get("/api/v1/status/buildinfo")
    except StoreUnavailable:
        return False
    return True
