"""Alertmanager's API v2, the two calls we need: POST and GET ``/api/v2/alerts``.

Blocking ``urllib`` (no new dependency; one request per cycle): the service calls
it through ``asyncio.to_thread``. Every failure is :class:`AlertmanagerUnreachable`
so the caller keeps the alerts and tries again next cycle.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from typing import Any

from .errors import AlertmanagerUnreachable

__all__ = ["TIMEOUT_S", "get_alerts", "post_alerts"]

TIMEOUT_S = 10.0


def _endpoint(url: str, query: Mapping[str, str] | None = None) -> str:
    base = url.rstrip("/") + "/api/v2/alerts"
    return base + ("?" + urllib.parse.urlencode(query) if query else "")


def _why(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        body = exc.read()[:200].decode("utf-8", "replace").strip()
        return f"HTTP {exc.code}" + (f" {body}" if body else "")
    if isinstance(exc, urllib.error.URLError):
        return str(exc.reason)
    return str(exc) or type(exc).__name__


def post_alerts(url: str, alerts: Sequence[Mapping[str, Any]], timeout: float = TIMEOUT_S) -> None:
    """POST the alerts; returns only when Alertmanager answered 200."""
    req = urllib.request.Request(_endpoint(url), data=json.dumps(list(alerts)).encode(),
                                 method="POST", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            r.read()
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise AlertmanagerUnreachable(url, _why(exc)) from None


def get_alerts(url: str, query: Mapping[str, str], timeout: float = TIMEOUT_S
               ) -> list[dict[str, Any]]:
    """GET the alerts Alertmanager holds, filtered by ``query`` (``active``, ``silenced``...)."""
    try:
        with urllib.request.urlopen(_endpoint(url, query), timeout=timeout) as r:
            body = json.loads(r.read())
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise AlertmanagerUnreachable(url, _why(exc)) from None
    if not isinstance(body, list):
        raise AlertmanagerUnreachable(url, "the answer is not a list of alerts")
    return [a for a in body if isinstance(a, dict)]
