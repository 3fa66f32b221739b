"""Backoff: full jitter within a capped exponential ceiling; Retry-After is a floor."""

from __future__ import annotations

import random

import pytest

from gateway.forward.retry import Backoff


def test_ceiling_doubles_then_caps() -> None:
    b = Backoff(base=0.5, cap=30.0)
    assert [b.ceiling(a) for a in range(8)] == [0.5, 1, 2, 4, 8, 16, 30, 30]
    assert b.ceiling(10_000) == 30.0  # no overflow for a long outage


def test_full_jitter_is_seeded_and_bounded() -> None:
    a = Backoff(base=0.5, cap=30.0, rng=random.Random(42))
    b = Backoff(base=0.5, cap=30.0, rng=random.Random(42))
    seq_a = [a.next_delay(n) for n in range(50)]
    assert seq_a == [b.next_delay(n) for n in range(50)]
    for n, d in enumerate(seq_a):
        assert 0.0 <= d <= min(30.0, 0.5 * 2 ** n)
    # jitter actually spreads: at the cap the draws are not all equal
    capped = seq_a[10:]
    assert max(capped) - min(capped) > 5.0


def test_retry_after_is_a_floor_and_clamped() -> None:
    b = Backoff(base=0.5, cap=30.0, rng=random.Random(1), retry_after_cap=120.0)
    assert all(b.next_delay(0, retry_after=7.0) == 7.0 for _ in range(20))  # jitter <= 0.5
    assert b.next_delay(0, retry_after=86_400.0) == 120.0
    d = b.next_delay(20, retry_after=1.0)  # a larger backoff wins over a small Retry-After
    assert 1.0 <= d <= 30.0
    assert b.next_delay(0, retry_after=None) <= 0.5


def test_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        Backoff(base=0, cap=1)
