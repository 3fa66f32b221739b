"""InfluxDB v2 write API (``/api/v2/write``) through ``influxdb-client``.

Works with InfluxDB 2.x/3.x, InfluxDB 1.8+ (token ``user:password``, bucket
``db/rp``) and VictoriaMetrics (which ignores org and token; it names series
``{measurement}_{field}`` and keeps ``bucket``/``db`` as a label only if asked).

We use the client's SYNCHRONOUS write API from a daemon thread (:mod:`.detached`), never its
background batching mode: that mode keeps its retries in memory and gives up
after a few attempts, while our durable buffer already is the retry memory.
The client's own urllib3 retries are turned off for the same reason; every
error is translated into StoreTransient / StoreRejected / StoreFatal here.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import ssl
import threading
import urllib.parse
from typing import Any

from influxdb_client.client.influxdb_client import InfluxDBClient
from influxdb_client.client.write_api import SYNCHRONOUS
from influxdb_client.domain.write_precision import WritePrecision
from influxdb_client.rest import ApiException
from urllib3.exceptions import HTTPError as Urllib3Error

from protocols.config import StoreSection

from .base import StoreTransient, classify_status
from .detached import detached

__all__ = ["InfluxDB2Store"]

_CLOSE_S = 1.0


class InfluxDB2Store:
    def __init__(self, cfg: StoreSection) -> None:
        self._cfg = cfg
        self._what = f"InfluxDB v2 bucket '{cfg.bucket}' (org '{cfg.org}') at {cfg.url}"
        # https: verified against [store] ca_file (or the system CAs), host name checked.
        self._client: Any = InfluxDBClient(url=cfg.url, token=cfg.token, org=cfg.org,
                                           timeout=int(cfg.timeout_s * 1000), retries=False,
                                           verify_ssl=True,
                                           ssl_ca_cert=str(cfg.ca_file) if cfg.ca_file
                                           else None)
        self._write_api: Any = self._client.write_api(write_options=SYNCHRONOUS)
        self._lock = threading.Lock()

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            try:
                return fn(*args, **kwargs)
            except ApiException as exc:
                status = int(exc.status or 0)
                headers: Any = exc.headers or {}
                retry_after = headers.get("Retry-After") if hasattr(headers, "get") else None
                body = exc.body.decode("utf-8", "replace") if isinstance(exc.body, bytes) \
                    else str(exc.body or exc.reason or "")
                raise classify_status(status, _message(body), retry_after, self._what) from None
            except (Urllib3Error, OSError) as exc:
                raise StoreTransient(f"{self._what}: {type(exc).__name__}: {exc}") from None

    def _write(self, body: bytes) -> None:
        self._call(self._write_api.write, bucket=self._cfg.bucket, org=self._cfg.org,
                   record=body, write_precision=WritePrecision.MS)

    def _ping(self) -> None:
        ok = self._call(self._client.ping)
        if not ok:
            self._tls_probe()  # the client hides why; a refused certificate must be told
            raise StoreTransient(f"{self._what} does not answer /ping")

    def _tls_probe(self) -> None:
        url = urllib.parse.urlsplit(self._cfg.url)
        if url.scheme != "https" or not url.hostname:
            return
        ca = str(self._cfg.ca_file) if self._cfg.ca_file else None
        try:
            ctx = ssl.create_default_context(cafile=ca)
            with socket.create_connection((url.hostname, url.port or 443),
                                          timeout=self._cfg.timeout_s) as raw, \
                    ctx.wrap_socket(raw, server_hostname=url.hostname):
                pass
        except ssl.SSLError as exc:
            raise StoreTransient(f"{self._what}: TLS: {exc} (check [store] ca_file and the "
                                 "host name in [store] url)") from None
        except OSError:
            return

    async def ensure_ready(self) -> None:
        """Reachability only: bucket and token problems show up as StoreFatal on write
        (VictoriaMetrics and InfluxDB 1.8 have no bucket API to check them with)."""
        await detached(self._ping, "influxdb2-ping")

    async def write(self, body: bytes, n_lines: int) -> None:
        await detached(lambda: self._write(body), "influxdb2-write")

    async def aclose(self) -> None:
        def close() -> None:  # not under the lock: see InfluxDB1Store.aclose
            self._write_api.close()
            self._client.close()
        with contextlib.suppress(TimeoutError):  # never wait long for a hung store
            await asyncio.wait_for(detached(close, "influxdb2-close"), _CLOSE_S)


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
