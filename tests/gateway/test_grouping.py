"""Commit groups: the window shrinks with the arrival rate, the group follows the
Receive Maximum, a batch's acks go out in one call when the sink can."""

from __future__ import annotations

from gateway.ingest.grouping import Window, ack_all, commit_group
from protocols.config import Config
from tests.gateway.helpers import FakeSink, msg


def test_window_is_the_configured_one_at_low_rates_and_shrinks_at_high() -> None:
    w = Window(2.5, 500)
    assert w.current(0.0) == 2.5  # nothing known yet
    w.arrived += 25  # 10 msg/s
    assert w.current(2.5) == 2.5
    window = 2.5
    for k in range(1, 5):  # then 1,000 msg/s
        w.arrived += 500
        window = w.current(2.5 + 0.5 * k)
    assert 900 < w.rate <= 1000
    assert window <= 0.3  # half the time a group of 500 takes to fill at that rate


def test_a_burst_at_start_shrinks_the_window_before_the_first_estimate() -> None:
    """A backlog at start arrives within the first 0.25 s: its tail must not wait the
    whole window for want of a rate estimate (issue 21, start-up)."""
    w = Window(2.5, 500)
    assert w.current(10.0) == 2.5
    w.arrived += 1000  # 1,000 in 50 ms
    assert w.current(10.05) < 0.05
    slow = Window(2.5, 500)
    slow.current(10.0)
    slow.arrived += 1  # a trickle keeps the configured window
    assert slow.current(10.1) == 2.5


def test_group_is_half_the_receive_maximum() -> None:
    cfg = Config.model_validate({"site": "s", "mqtt": {"receive_maximum": 1000},
                                 "store": {"kind": "influxdb1", "url": "http://127.0.0.1:1"}})
    assert commit_group(cfg) == 500


def test_ack_all_per_message_without_ack_many() -> None:
    sink = FakeSink()
    ack_all(sink, [msg("a", 1, mid=1), msg("a", 2, mid=2), msg("a", 3)])
    assert sink.acked == [1, 2]
