"""InfluxDB v2 write API (``/api/v2/write?org=&bucket=&precision=ms``) over the stdlib.

Works with InfluxDB 2.x/3.x, InfluxDB 1.8+ (token ``user:password``, bucket
``db/rp``) and VictoriaMetrics (which ignores org and token; it names series
``{measurement}_{field}`` and keeps ``bucket``/``db`` as a label only if asked).

Two endpoints (``/api/v2/write``, ``/ping``) need no client library: this shares
the InfluxDB 1 store's one keep-alive ``http.client`` connection, used from a
worker thread under a lock and re-opened after any error, with no hidden
retries (the durable buffer is the retry memory). ``influxdb-client`` was used
before; it pulled in numpy and reactivex (~25 MiB of RSS, ~1 s of start-up) for
one POST. Every error is translated into StoreTransient / StoreRejected /
StoreFatal here.
"""

from __future__ import annotations

import asyncio
import json

from ..config import StoreSection
from .base import StoreTransient, classify_status
from .influxdb1 import InfluxDB1Store

__all__ = ["InfluxDB2Store"]


class InfluxDB2Store(InfluxDB1Store):
    def __init__(self, cfg: StoreSection) -> None:
        super().__init__(cfg)
        self._bucket, self._org = cfg.bucket, cfg.org
        self._what = f"InfluxDB v2 bucket '{cfg.bucket}' (org '{cfg.org}') at {cfg.url}"
        self._headers = {"Content-Type": "text/plain; charset=utf-8",
                         "Accept": "application/json"}
        if cfg.token:
            self._headers["Authorization"] = f"Token {cfg.token}"

    def _write(self, body: bytes) -> None:
        status, text, retry_after = self._request(
            "/api/v2/write", {"org": self._org, "bucket": self._bucket, "precision": "ms"},
            body)
        if status >= 300:
            raise classify_status(status, _message(text), retry_after, self._what)

    def _ping(self) -> None:
        status, _, _ = self._request("/ping", {}, b"", method="GET")
        if status >= 300:
            raise StoreTransient(f"{self._what} does not answer /ping (HTTP {status})")

    async def ensure_ready(self) -> None:
        """Reachability only: bucket and token problems show up as StoreFatal on write
        (VictoriaMetrics and InfluxDB 1.8 have no bucket API to check them with)."""
        await asyncio.to_thread(self._ping)


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
