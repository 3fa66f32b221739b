"""Retry policy for store writes: capped exponential backoff with full jitter.

Pure (no clock, no sleeping): the forwarder asks for a delay and sleeps itself,
so tests drive it with a seeded ``random.Random`` and a fake sleep.

Full jitter (a uniform draw in ``[0, min(cap, base * 2**attempt)]``) spreads the
retries of many gateways after a shared store outage instead of having them
all hit the store at the same instants. A ``Retry-After`` from the store (429,
503) is a floor: we never come back earlier than the store asked, but a
nonsensical value (a day) is clamped to ``retry_after_cap`` so a single bad
header cannot park the gateway.
"""

from __future__ import annotations

import random

__all__ = ["Backoff"]


class Backoff:
    """``next_delay(attempt)`` for attempt 0, 1, 2, ... (0 = first retry)."""

    def __init__(self, base: float = 0.5, cap: float = 30.0, rng: random.Random | None = None,
                 retry_after_cap: float = 600.0) -> None:
        if base <= 0 or cap <= 0:
            raise ValueError("base and cap must be positive")
        self.base = base
        self.cap = cap
        self.retry_after_cap = max(retry_after_cap, cap)
        self._rng = rng if rng is not None else random.Random()

    def ceiling(self, attempt: int) -> float:
        """The largest delay the draw for ``attempt`` can return (before Retry-After)."""
        # 2**attempt overflows float for huge attempts; cap the exponent first.
        return min(self.cap, self.base * 2.0 ** min(max(attempt, 0), 64))

    def next_delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number ``attempt`` (full jitter, capped)."""
        delay = self._rng.uniform(0.0, self.ceiling(attempt))
        if retry_after is not None and retry_after > 0:
            delay = max(delay, min(retry_after, self.retry_after_cap))
        return delay
