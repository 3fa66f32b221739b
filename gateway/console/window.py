"""Time windows from query parameters: finite, bounded, never "all of history".

Why: ``since=nan`` or ``until=1e20`` reached the store as a 500 (NaN through
``int()``, a year past 9999 through ``datetime``), and ``since=0`` asked a store
for every reading it ever held. Every API that takes ``since``/``until`` goes
through :func:`time_window`: both ends between 2020-01-01 and now + 1 day, ``since``
before ``until``, at most 366 days apart; anything else is a :class:`WindowError`
(a 400 with this one line).
"""

from __future__ import annotations

import datetime as dt
import math

__all__ = ["EARLIEST", "MAX_SPAN_S", "WindowError", "parse_time", "time_window"]

EARLIEST = dt.datetime(2020, 1, 1, tzinfo=dt.UTC).timestamp()
MAX_SPAN_S = 366 * 86400
FUTURE_S = 86400


class WindowError(ValueError):
    """A time window a reader must not be asked for (the message says why)."""


def parse_time(raw: str | None, default: float) -> float:
    """ISO 8601 (UTC if no offset) or Unix seconds, finite; WindowError otherwise."""
    if not raw:
        return default
    try:
        t = float(raw)
    except ValueError:
        try:
            d = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            raise WindowError("since/until: ISO 8601 (UTC) or Unix seconds") from None
        if d.tzinfo is None:
            d = d.replace(tzinfo=dt.UTC)
        t = d.timestamp()
    if not math.isfinite(t):
        raise WindowError("since/until must be finite times")
    return t


def time_window(since_raw: str | None, until_raw: str | None, default_span_s: float,
                now: float) -> tuple[float, float]:
    """(since, until) in Unix seconds, checked; ``until`` defaults to now and ``since``
    to ``until - default_span_s``."""
    until = parse_time(until_raw, now)
    since = parse_time(since_raw, until - default_span_s)
    if not EARLIEST <= since < until <= now + FUTURE_S:
        raise WindowError("since < until, both between 2020-01-01 and now + 1 day")
    if until - since > MAX_SPAN_S:
        raise WindowError("a window of at most 366 days")
    return since, until
