"""InfluxDB 1.x through its v1 HTTP API (``/write?db=&precision=ms``, ``/query``).

The stdlib ``http.client`` is enough for two endpoints: one persistent
keep-alive connection, used from a daemon thread (:mod:`.detached`, so a hung
server never delays the exit) under a lock, re-opened after any error. No extra
dependency and no hidden retries: the durable buffer is the retry memory, this
class only says what went wrong.

``ensure_ready`` runs ``CREATE DATABASE`` (idempotent in InfluxDB 1.x), so the
gateway creates its database if it is missing. If the database disappears while
running (someone dropped it), a write answers 404; we recreate it and report a
transient error so the same batch is retried.
"""

from __future__ import annotations

import base64
import http.client
import json
import ssl
import threading
import urllib.parse

from protocols.config import StoreSection

from .base import StoreError, StoreFatal, StoreTransient, classify_status
from .detached import detached

__all__ = ["InfluxDB1Store"]


class InfluxDB1Store:
    def __init__(self, cfg: StoreSection) -> None:
        url = urllib.parse.urlsplit(cfg.url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise StoreFatal(f"[store] url {cfg.url!r} is not an http(s) URL "
                             "(e.g. http://127.0.0.1:8086)")
        self._https = url.scheme == "https"
        self._ssl: ssl.SSLContext | None = None
        if self._https:  # verified: the server's chain and host name, [store] ca_file or system CAs
            try:
                self._ssl = ssl.create_default_context(
                    cafile=str(cfg.ca_file) if cfg.ca_file else None)
            except (OSError, ssl.SSLError) as exc:
                raise StoreFatal(f"[store] ca_file {cfg.ca_file}: {exc} (point it at the CA "
                                 "that signed the store's certificate, PEM)") from None
        self._host = url.hostname
        self._port = url.port or (443 if self._https else 80)
        self._base = url.path.rstrip("/")
        self._db = cfg.database
        self._timeout = cfg.timeout_s
        self._headers = {"Content-Type": "text/plain; charset=utf-8"}
        if cfg.username or cfg.password:
            cred = base64.b64encode(f"{cfg.username}:{cfg.password}".encode()).decode()
            self._headers["Authorization"] = f"Basic {cred}"
        self._what = f"InfluxDB 1 database '{self._db}' at {cfg.url}"
        self._conn: http.client.HTTPConnection | None = None
        self._lock = threading.Lock()

    # -- blocking part, runs in a worker thread ------------------------------------
    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            if self._https:
                self._conn = http.client.HTTPSConnection(self._host, self._port,
                                                         timeout=self._timeout, context=self._ssl)
            else:
                self._conn = http.client.HTTPConnection(self._host, self._port,
                                                        timeout=self._timeout)
        return self._conn

    def _request(self, path: str, params: dict[str, str],
                 body: bytes) -> tuple[int, str, str | None]:
        """POST and return (status, body text, Retry-After); network trouble is transient."""
        target = f"{self._base}{path}?{urllib.parse.urlencode(params)}"
        headers = dict(self._headers)
        if path == "/query":
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        with self._lock:
            for attempt in (1, 2):
                reused = self._conn is not None
                try:
                    conn = self._connection()
                    conn.request("POST", target, body=body, headers=headers)
                    resp = conn.getresponse()
                    text = resp.read().decode("utf-8", "replace")
                    if resp.getheader("Connection", "").lower() == "close":
                        self._close_locked()
                    return resp.status, text, resp.getheader("Retry-After")
                except (http.client.RemoteDisconnected, BrokenPipeError,
                        ConnectionResetError) as exc:
                    # the server closed an idle keep-alive connection: one fresh try
                    self._close_locked()
                    if not (reused and attempt == 1):
                        raise StoreTransient(f"{self._what}: {type(exc).__name__}: {exc}") \
                            from None
                except (OSError, http.client.HTTPException) as exc:
                    self._close_locked()
                    raise StoreTransient(f"{self._what}: {type(exc).__name__}: {exc}") from None
        raise AssertionError("unreachable")

    def _close_locked(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _create_database(self) -> None:
        q = urllib.parse.urlencode({"q": f'CREATE DATABASE "{self._db}"'}).encode()
        status, text, retry_after = self._request("/query", {}, q)
        if status >= 300:
            raise classify_status(status, _message(text), retry_after, self._what)
        err = _query_error(text)
        if err:
            raise StoreFatal(f"{self._what}: CREATE DATABASE failed: {err} "
                             "(create it by hand or grant the user ALL privileges)")

    def _write(self, body: bytes) -> None:
        status, text, retry_after = self._request(
            "/write", {"db": self._db, "precision": "ms"}, body)
        if status < 300:
            return
        error: StoreError = classify_status(status, _message(text), retry_after, self._what)
        if status == 404 and "database not found" in text:
            self._create_database()
            error = StoreTransient(f"{self._what} was missing; created it, retrying")
        raise error

    # -- the Store protocol ---------------------------------------------------------
    async def ensure_ready(self) -> None:
        await detached(self._create_database, "influxdb1-setup")

    async def write(self, body: bytes, n_lines: int) -> None:
        await detached(lambda: self._write(body), "influxdb1-write")

    async def aclose(self) -> None:
        # Not under the lock: a write stuck on a silent server must not block
        # shutdown; closing its socket makes that write fail (and not be acked).
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()


def _message(text: str) -> str:
    """InfluxDB 1 errors are ``{"error": "..."}``; anything else is passed through."""
    try:
        data = json.loads(text)
    except ValueError:
        return text
    if isinstance(data, dict) and isinstance(data.get("error"), str):
        return str(data["error"])
    return text


def _query_error(text: str) -> str | None:
    """``/query`` answers 200 with an error inside ``results`` (e.g. not authorized)."""
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    if isinstance(data.get("error"), str):
        return str(data["error"])
    for result in data.get("results") or []:
        if isinstance(result, dict) and isinstance(result.get("error"), str):
            return str(result["error"])
    return None
