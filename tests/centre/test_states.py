"""The derived states (wire contract, "Derived states (centre)"), rule by rule, in order.

Each test puts a device exactly where one rule applies, then shows that the rule
before it wins when both apply; edge cases sit at the boundaries (3 x interval,
``up`` = 0, several gateways, no gateway point at all).
"""

from __future__ import annotations

from gateway.stores.centre import DevicePoint, GatewayPoint, StationPoint
from gateway.stores.states import (
    DEFAULT_INTERVAL_S,
    DEVICE_STATES,
    device_states,
    gateway_down,
    gateway_state,
    site_gateways,
)

NOW = 1_800_000_000_000
S = 1000
KEY = ("lab", "d1")


def gw(age_s: float = 10, up: float = 1.0, backlog_s: float = 0.0, interval_s: float = 30.0,
       name: str = "gw1", site: str = "lab") -> GatewayPoint:
    return GatewayPoint(site, name, NOW - int(age_s * S), up=up, buffer_oldest_s=backlog_s,
                        interval_s=interval_s)


def dev(age_s: float = 10, online: float = 1.0, **fields: float) -> DevicePoint:
    return DevicePoint("lab", "d1", NOW - int(age_s * S), {"online": online, **fields})


def sta(retired: bool = False) -> StationPoint:
    return StationPoint("lab", "d1", NOW - 86_400 * S, retired=retired)


def state(gateways: list[GatewayPoint] | None = None, device: DevicePoint | None = None,
          station: StationPoint | None = None, reading_age_s: float | None = None) -> str:
    got = device_states(
        NOW, gateways=[gw()] if gateways is None else gateways,
        devices=[device] if device else [], stations=[station] if station else [],
        latest_reading={} if reading_age_s is None else {KEY: NOW - int(reading_age_s * S)})
    return got[KEY]


def test_the_order_is_the_contracts() -> None:
    assert DEVICE_STATES == ("retired", "unknown", "offline", "online", "delayed", "silent",
                             "never-seen")


# -- rule 1: retired -------------------------------------------------------------------
def test_retired() -> None:
    assert state(station=sta(retired=True)) == "retired"


def test_retired_wins_over_everything() -> None:
    assert state([gw(up=0.0)], dev(online=0.0), sta(retired=True), reading_age_s=1) == "retired"


def test_a_station_back_in_service_is_not_retired() -> None:
    assert state(station=sta(retired=False), reading_age_s=1) == "online"


# -- rule 2: unknown (the site's gateway is down) --------------------------------------
def test_unknown_when_the_gateway_is_silent_for_3_intervals() -> None:
    assert state([gw(age_s=91)], dev(), reading_age_s=1) == "unknown"
    assert state([gw(age_s=90)], dev(), reading_age_s=1) == "online"  # exactly 3 x: not yet


def test_unknown_at_once_when_the_gateway_says_up_0() -> None:
    assert state([gw(age_s=1, up=0.0)], dev(), reading_age_s=1) == "unknown"


def test_the_gateways_own_interval_counts() -> None:
    assert state([gw(age_s=50, interval_s=15.0)], reading_age_s=1) == "unknown"
    assert state([gw(age_s=50, interval_s=60.0)], reading_age_s=1) == "online"


def test_a_site_is_down_only_when_all_its_gateways_are() -> None:
    two = [gw(age_s=500, name="a"), gw(age_s=5, name="b")]
    assert state(two, reading_age_s=1) == "online"
    assert state([gw(age_s=500, name="a"), gw(up=0.0, name="b")], reading_age_s=1) == "unknown"


def test_unknown_wins_over_offline() -> None:
    assert state([gw(up=0.0)], dev(online=0.0)) == "unknown"


def test_a_site_without_any_gateway_point_is_not_unknown() -> None:
    assert state([], dev(online=0.0)) == "offline"
    assert state([gw(up=0.0, site="elsewhere")], reading_age_s=1) == "online"


# -- rule 3: offline ---------------------------------------------------------------------
def test_offline_by_the_last_will() -> None:
    assert state(device=dev(online=0.0)) == "offline"


def test_offline_wins_over_a_fresh_reading() -> None:
    assert state(device=dev(online=0.0), reading_age_s=1) == "offline"


# -- rule 4: online ----------------------------------------------------------------------
def test_online_by_a_reading_no_older_than_3_intervals() -> None:
    assert state(device=dev(interval_s=30.0), reading_age_s=90) == "online"
    assert state(device=dev(interval_s=30.0), reading_age_s=91) == "silent"


def test_online_with_the_default_interval_when_none_given() -> None:
    limit = 3 * DEFAULT_INTERVAL_S
    assert state(reading_age_s=limit) == "online"
    assert state(reading_age_s=limit + 1) == "silent"
    assert state(device=dev(interval_s=0.0), reading_age_s=limit) == "online"


def test_online_just_booted_without_a_reading_yet() -> None:
    assert state(device=dev(age_s=5, uptime=20.0, interval_s=60.0)) == "online"
    assert state(device=dev(age_s=5, uptime=180.0, interval_s=60.0)) == "silent"  # not < 3 x


def test_a_boot_long_ago_is_not_online() -> None:
    """The status came 5 s after boot, but that was an hour ago: the board died since."""
    assert state(device=dev(age_s=3600, uptime=5.0, interval_s=60.0)) == "silent"


def test_online_wins_over_delayed() -> None:
    assert state([gw(backlog_s=10_000)], dev(), reading_age_s=1) == "online"


# -- rule 5: delayed ---------------------------------------------------------------------
def test_delayed_when_the_backlog_is_longer_than_3_intervals() -> None:
    assert state([gw(backlog_s=181)], dev(age_s=600, interval_s=60.0),
                 reading_age_s=600) == "delayed"
    assert state([gw(backlog_s=180)], dev(age_s=600, interval_s=60.0),
                 reading_age_s=600) == "silent"


def test_delayed_uses_the_longest_backlog_of_an_up_gateway() -> None:
    gws = [gw(name="a", backlog_s=10), gw(name="b", backlog_s=1000),
           gw(name="c", backlog_s=99_999, age_s=9999)]  # c is down: its backlog is stale
    assert site_gateways(gws, NOW)["lab"].backlog_s == 1000
    assert state(gws, reading_age_s=600) == "delayed"


def test_a_never_seen_device_can_be_delayed() -> None:
    """Its first readings may still be in the buffer."""
    assert state([gw(backlog_s=1000)], station=sta()) == "delayed"


# -- rule 6: silent ----------------------------------------------------------------------
def test_silent_with_an_old_device_point() -> None:
    assert state(device=dev(age_s=3600)) == "silent"


def test_silent_with_only_an_old_reading() -> None:
    assert state(reading_age_s=3600) == "silent"


# -- rule 7: never-seen ------------------------------------------------------------------
def test_never_seen_with_a_station_point_only() -> None:
    assert state(station=sta()) == "never-seen"


def test_every_device_any_input_names_gets_a_state() -> None:
    got = device_states(NOW, gateways=[gw()],
                        devices=[DevicePoint("lab", "a", NOW, {"online": 0.0})],
                        stations=[StationPoint("lab", "b", NOW)],
                        latest_reading={("other", "c"): NOW})
    assert got == {("lab", "a"): "offline", ("lab", "b"): "never-seen",
                   ("other", "c"): "online"}


def test_gateway_state() -> None:
    assert gateway_state(gw(age_s=10), NOW) == "online"
    assert gateway_state(gw(age_s=91), NOW) == "down"
    assert gateway_down(gw(up=0.0), NOW)
