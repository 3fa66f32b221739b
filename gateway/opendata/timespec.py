"""Times on the command line: RFC 3339 (``2026-11-25T10:00:00Z``), a date, ``now``, or
relative to now (``-24h``, ``-7d``, ``-30m``, ``-90s``)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from .errors import ExportError

__all__ = ["parse_time", "rfc3339_ms"]

_REL = re.compile(r"^-(\d+(?:\.\d+)?)([smhdw])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_time(text: str, now: float, what: str = "time") -> float:
    """Unix seconds for ``text``; a time without an offset is UTC."""
    t = text.strip()
    if t == "now":
        return now
    m = _REL.match(t)
    if m:
        return now - float(m.group(1)) * _UNIT_S[m.group(2)]
    try:
        dt = datetime.fromisoformat(t.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ExportError(f"{what} {text!r} is not RFC 3339 or relative "
                          "(e.g. 2026-11-25T10:00:00Z, 2026-11-25 or -24h)") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def rfc3339_ms(ms: int) -> str:
    """``2026-11-25T10:00:00.123Z`` (UTC, milliseconds)."""
    return datetime.fromtimestamp(ms // 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S") \
        + f".{ms % 1000:03d}Z"
