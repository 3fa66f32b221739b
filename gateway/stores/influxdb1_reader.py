"""Reader for InfluxDB 1.x: InfluxQL over ``/query`` with ``chunked=true`` (the v1 API;
Debian's influxd 1.6 has nothing else), one query per time window."""

from __future__ import annotations

import base64
import http.client
import json
import urllib.parse
from collections.abc import Sequence

from protocols.config import StoreSection

from .reading import Reading, StoreUnreadable

__all__ = ["InfluxDB1Reader", "influxql"]

_TAGS = ("site", "device", "sensor")


def _ident(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _str(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def influxql(since_ms: int, until_ms: int, domains: Sequence[str],
             devices: Sequence[str]) -> str:
    """``SELECT *`` of the domains' measurements in the window (ms, end exclusive)."""
    q = (f"SELECT * FROM {','.join(_ident(d) for d in domains)} "
         f"WHERE time >= {since_ms}ms AND time < {until_ms}ms")
    if devices:
        q += " AND (" + " OR ".join(f"device = {_str(d)}" for d in devices) + ")"
    return q


class InfluxDB1Reader:
    def __init__(self, cfg: StoreSection) -> None:
        url = urllib.parse.urlsplit(cfg.url)
        self._cfg = cfg
        self._https = url.scheme == "https"
        self._host = url.hostname or "127.0.0.1"
        self._port = url.port or (443 if self._https else 80)
        self._base = url.path.rstrip("/")
        self._headers = {"Accept": "application/json"}
        if cfg.username or cfg.password:
            cred = base64.b64encode(f"{cfg.username}:{cfg.password}".encode()).decode()
            self._headers["Authorization"] = f"Basic {cred}"
        self._what = f"InfluxDB 1 database '{cfg.database}' at {cfg.url}"

    def _get(self, params: dict[str, str]) -> http.client.HTTPResponse:
        cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        conn = cls(self._host, self._port, timeout=self._cfg.timeout_s * 6)
        try:
            conn.request("GET", f"{self._base}/query?{urllib.parse.urlencode(params)}",
                         headers=self._headers)
            resp = conn.getresponse()
        except OSError as exc:
            conn.close()
            raise StoreUnreadable(f"{self._what} is unreachable: {exc} "
                                  "(start it or check [store] url)") from None
        if resp.status >= 300:
            text = resp.read().decode("utf-8", "replace")[:200]
            conn.close()
            raise StoreUnreadable(f"{self._what} answered {resp.status}: {text} "
                                  "(check [store] database, username, password)")
        return resp

    def check(self) -> None:
        resp = self._get({"q": "SHOW MEASUREMENTS", "db": self._cfg.database})
        data = json.loads(resp.read())
        for result in data.get("results", []):
            if "error" in result:
                raise StoreUnreadable(f"{self._what}: {result['error']} "
                                      "(check [store] database)")

    def window(self, since_ms: int, until_ms: int, domains: Sequence[str],
               devices: Sequence[str]) -> list[Reading]:
        resp = self._get({"q": influxql(since_ms, until_ms, domains, devices),
                          "db": self._cfg.database, "epoch": "ms", "chunked": "true",
                          "chunk_size": "10000"})
        out: list[Reading] = []
        try:
            for line in resp:  # one JSON document per chunk
                if not line.strip():
                    continue
                data = json.loads(line)
                for result in data.get("results", []):
                    if "error" in result:
                        raise StoreUnreadable(f"{self._what}: {result['error']}")
                    for series in result.get("series", []) or []:
                        _rows(series, out)
        except (OSError, ValueError) as exc:
            raise StoreUnreadable(f"{self._what}: reading the answer failed: {exc}") from None
        finally:
            resp.close()
        return out

    def close(self) -> None:
        pass


def _rows(series: dict[str, object], out: list[Reading]) -> None:
    domain = str(series["name"])
    cols = list(series["columns"])  # type: ignore[call-overload]
    it = cols.index("time")
    tag_at = {t: cols.index(t) for t in _TAGS if t in cols}
    fields = [(i, c) for i, c in enumerate(cols) if c != "time" and c not in tag_at]
    for row in series["values"]:  # type: ignore[attr-defined]
        t = int(row[it])
        site = row[tag_at["site"]] if "site" in tag_at else ""
        device = row[tag_at["device"]] if "device" in tag_at else ""
        sensor = (row[tag_at["sensor"]] if "sensor" in tag_at else "") or ""
        for i, name in fields:
            v = row[i]
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                out.append(Reading(t, site or "", device or "", sensor, domain, name, float(v)))
