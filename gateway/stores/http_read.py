"""GET against the store's read URLs, in order: what the HTTP readers share.

``[store] read_urls`` (default ``[url]``) lists every node a reader may ask,
e.g. both VictoriaMetrics nodes behind vmagent. A node that does not answer
(refused, timeout, HTTP 5xx) makes the reader ask the next one, and the one
that answered is asked first from then on; a 4xx is the query's or the
config's fault, so no other node is tried. When none answers: one
:class:`StoreUnreadable` naming every URL and the fix. Each request counts as
one query (``queries``: benches and the bounded-count tests).
"""

from __future__ import annotations

import base64
import ssl
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

from .reading import StoreUnreadable

__all__ = ["HttpReads", "StoreRefused", "basic_auth"]


class StoreRefused(StoreUnreadable):
    """A node answered with a 4xx: the query or the config is wrong, not the node."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def basic_auth(username: str, password: str) -> dict[str, str]:
    if not (username or password):
        return {}
    cred = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {cred}"}


class HttpReads:
    def __init__(self, urls: Sequence[str], timeout: float, what: str,
                 headers: Mapping[str, str] | None = None,
                 ca_file: Path | None = None) -> None:
        if not urls:
            raise StoreUnreadable(f"{what}: no URL to read from (set [store] url or read_urls)")
        self.urls = [u.rstrip("/") for u in urls]
        self.timeout = timeout
        self.what = what
        self.headers = dict(headers or {})
        self._ssl: ssl.SSLContext | None = None
        if any(u.startswith("https:") for u in self.urls):
            try:
                self._ssl = ssl.create_default_context(
                    cafile=str(ca_file) if ca_file else None)
            except (OSError, ssl.SSLError) as exc:
                raise StoreUnreadable(f"[store] ca_file {ca_file}: {exc} (point it at the CA "
                                      "that signed the store's certificate, PEM)") from None
        self._first = 0
        self._lock = threading.Lock()
        self.count = 0

    @property
    def url(self) -> str:
        """The URL asked first (the last one that answered)."""
        return self.urls[self._first]

    def get(self, path: str, params: Mapping[str, str] | Sequence[tuple[str, str]] = ()
            ) -> bytes:
        """The body of a 2xx answer from the first URL that gives one."""
        query = urllib.parse.urlencode(params)
        with self._lock:
            self.count += 1
            first = self._first
        errors: list[str] = []
        n = len(self.urls)
        for i in range(n):
            at = (first + i) % n
            url = f"{self.urls[at]}{path}" + (f"?{query}" if query else "")
            req = urllib.request.Request(url, headers=self.headers)
            try:
                with urllib.request.urlopen(req, timeout=self.timeout,
                                            context=self._ssl) as resp:
                    body = bytes(resp.read())
            except urllib.error.HTTPError as exc:
                text = " ".join(exc.read(300).decode("utf-8", "replace").split())
                if exc.code < 500:
                    raise StoreRefused(f"{self.what} at {self.urls[at]} answered HTTP "
                                       f"{exc.code}: {text} (check [store] credentials, "
                                       "database or bucket)", exc.code) from None
                errors.append(f"{self.urls[at]}: HTTP {exc.code} {text[:100]}")
                continue
            except (urllib.error.URLError, OSError, ValueError) as exc:
                errors.append(f"{self.urls[at]}: {getattr(exc, 'reason', exc)}")
                continue
            if at != first:
                with self._lock:
                    self._first = at
            return body
        raise StoreUnreadable(f"{self.what} is unreachable at every read URL "
                              f"({'; '.join(errors)}): start the store or check [store] url "
                              "and read_urls")
