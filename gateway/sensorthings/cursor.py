"""``$skiptoken``: where a nextLink continues, as an opaque URL-safe string.

A cursor holds the sort key of the last entity returned (and, for Observations,
the time window that found it), never an offset: a page of a million-row
Datastream costs the same as the first, and rows arriving meanwhile neither
shift nor repeat what a client already has.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from .errors import bad_request

__all__ = ["decode", "encode"]


def encode(state: dict[str, Any]) -> str:
    raw = json.dumps(state, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(token: str) -> dict[str, Any]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        state = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise bad_request("invalid $skiptoken (take nextLinks as they are)") from None
    if not isinstance(state, dict):
        raise bad_request("invalid $skiptoken (take nextLinks as they are)")
    return state
