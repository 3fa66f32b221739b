"""What every store does, and the three ways a write can fail.

The forwarder only needs to know *what to do next* after a failed write, so
each store translates its client's errors into exactly one of:

- :class:`StoreTransient`: try the same batch again later (connection refused or
  reset, timeout, HTTP 5xx, 429). ``retry_after`` carries the store's
  ``Retry-After`` header in seconds when it sent one.
- :class:`StoreRejected`: the store will never accept this batch as it is
  (HTTP 400, 413, 422). The forwarder splits it to find the bad lines.
  ``partial`` is true when the store says it wrote the good points anyway
  (InfluxDB 2's 422, InfluxDB 1's ``partial write`` 400); rewriting them is
  harmless because a point is identified by (measurement, tags, time).
- :class:`StoreFatal`: retrying cannot help until a human changes something
  (401/403 credentials, 404 bucket/database missing). The message names the fix.
"""

from __future__ import annotations

from typing import Protocol

from ..errors import GatewayError

__all__ = ["Store", "StoreError", "StoreFatal", "StoreRejected", "StoreTransient",
           "classify_status", "parse_retry_after"]


class StoreError(GatewayError):
    """Root of the store errors."""


class StoreTransient(StoreError):
    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class StoreRejected(StoreError):
    def __init__(self, message: str, status: int | None = None, partial: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.partial = partial


class StoreFatal(StoreError):
    """A configuration problem; the message is one line naming the fix."""


class Store(Protocol):
    """A place points go to. Every method may raise the three errors above."""

    async def ensure_ready(self) -> None:
        """Check (and where the store allows it, create) the target database."""

    async def write(self, body: bytes, n_lines: int) -> None:
        """Write newline-separated line-protocol ``body`` (ms precision), all or error."""

    async def aclose(self) -> None:
        """Release connections; safe to call twice."""


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` in seconds; HTTP dates are rare from these stores, so ignored."""
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


def classify_status(status: int, message: str, retry_after: str | None,
                    what: str) -> StoreError:
    """Map an HTTP error status to the error the forwarder acts on.

    ``what`` names the target ("InfluxDB 1 database 'x' at URL") for fatal messages.
    """
    msg = " ".join(message.split())[:500]
    if status in (400, 413, 422):
        partial = status == 422 or "partial write" in msg
        return StoreRejected(f"HTTP {status}: {msg}", status=status, partial=partial)
    if status in (401, 403):
        return StoreFatal(f"{what} refused the credentials (HTTP {status}: {msg}); "
                          "check [store] token/username/password")
    if status == 404:
        return StoreFatal(f"{what} not found (HTTP 404: {msg}); "
                          "check [store] url and bucket/database, or create it")
    if status == 429 or status >= 500:
        return StoreTransient(f"HTTP {status}: {msg}", parse_retry_after(retry_after))
    return StoreFatal(f"{what} answered HTTP {status}: {msg} (check [store] settings)")
