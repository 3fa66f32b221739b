"""InfluxDB 2.x (and anything speaking its write API: VictoriaMetrics, InfluxDB 1.8+)
through ``/api/v2/write?org=&bucket=&precision=ms`` with ``Authorization: Token``.

The same stdlib ``http.client`` machinery as :mod:`.influxdb1` (one keep-alive
connection in a daemon thread under a lock, re-opened after any error, no hidden
retries): the ``influxdb-client`` library took ~0.25 s to import, half the
gateway's start on a Pi-class machine (issue 21, "first point within 0.5 s").
An https URL is verified against ``[store] ca_file`` (or the system CAs) with the
host name checked; a refused certificate shows in the error (``CERTIFICATE_VERIFY_FAILED``).
"""

from __future__ import annotations

import json

from protocols.config import StoreSection

from .base import StoreTransient, classify_status
from .detached import detached
from .influxdb1 import InfluxDB1Store

__all__ = ["InfluxDB2Store"]


class InfluxDB2Store(InfluxDB1Store):
    def __init__(self, cfg: StoreSection) -> None:
        super().__init__(cfg)
        self._what = f"InfluxDB v2 bucket '{cfg.bucket}' (org '{cfg.org}') at {cfg.url}"
        self._headers = {"Content-Type": "text/plain; charset=utf-8"}
        if cfg.token:
            self._headers["Authorization"] = f"Token {cfg.token}"
        self._params = {"org": cfg.org, "bucket": cfg.bucket, "precision": "ms"}

    def _write(self, body: bytes) -> None:
        status, text, retry_after = self._request("/api/v2/write", self._params, body)
        if status >= 300:
            raise classify_status(status, _message(text), retry_after, self._what)

    def _ping(self) -> None:
        status, _, _ = self._request("/ping", {}, None, method="GET")
        if status >= 300:
            raise StoreTransient(f"{self._what} does not answer /ping (HTTP {status})")

    async def ensure_ready(self) -> None:
        """Reachability only: bucket and token problems show up as StoreFatal on write
        (VictoriaMetrics and InfluxDB 1.8 have no bucket API to check them with)."""
        await detached(self._ping, "influxdb2-ping")


def _message(body: str) -> str:
    try:
        data = json.loads(body)
    except ValueError:
        return body
    if isinstance(data, dict):
        for key in ("message", "error"):
            if isinstance(data.get(key), str):
                return str(data[key])
    return body
