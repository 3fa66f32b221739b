"""Identifier rules and topic parse/build round trips."""

from __future__ import annotations

import pytest

from protocols import (
    DEFAULT_PREFIX,
    ID_RE,
    SENSOR_RE,
    TopicError,
    TopicInfo,
    config_topic,
    gateway_status_topic,
    is_id,
    is_sensor,
    parse_topic,
    rejected_topic,
    site_filter,
    status_topic,
    telemetry_topic,
)


@pytest.mark.parametrize("s", ["a", "0", "air-0001", "bdnc-lab", "a" * 63, "a-"])
def test_valid_ids(s: str) -> None:
    assert is_id(s)
    assert ID_RE.match(s)


@pytest.mark.parametrize("s", ["", "-a", "A", "air_0001", "a" * 64, "a/b", "a+", "#", "a\n",
                               "é", "_gateway", "a b"])
def test_invalid_ids(s: str) -> None:
    assert not is_id(s)
    assert not ID_RE.match(s)


def test_id_rejects_non_strings() -> None:
    assert not is_id(1)
    assert not is_sensor(None)


@pytest.mark.parametrize("s", ["scd41", "pms5003", "_x", "a" * 32, "bme_280"])
def test_valid_sensors(s: str) -> None:
    assert is_sensor(s) and SENSOR_RE.match(s)


@pytest.mark.parametrize("s", ["", "a" * 33, "SCD41", "scd-41", "scd41\n", "a.b"])
def test_invalid_sensors(s: str) -> None:
    assert not is_sensor(s)


@pytest.mark.parametrize(("build", "kind", "leaf"), [
    (telemetry_topic, "telemetry", "telemetry"),
    (status_topic, "status", "status"),
    (config_topic, "config", "config"),
])
def test_device_topics_round_trip(build: object, kind: str, leaf: str) -> None:
    assert callable(build)
    topic = build("bdnc-lab", "air-0001")
    assert topic == f"livinglab/v1/bdnc-lab/air-0001/{leaf}"
    assert parse_topic(topic) == TopicInfo(kind, "bdnc-lab", "air-0001", None)  # type: ignore[arg-type]


def test_gateway_topics_round_trip() -> None:
    st = gateway_status_topic("bdnc-lab", "gw-01")
    rj = rejected_topic("bdnc-lab", "gw-01")
    assert st == "livinglab/v1/bdnc-lab/_gateway/gw-01/status"
    assert rj == "livinglab/v1/bdnc-lab/_gateway/gw-01/rejected"
    assert parse_topic(st) == TopicInfo("gateway_status", "bdnc-lab", None, "gw-01")
    assert parse_topic(rj) == TopicInfo("rejected", "bdnc-lab", None, "gw-01")


def test_custom_prefix() -> None:
    topic = telemetry_topic("s", "d", prefix="x/y/z")
    assert topic == "x/y/z/s/d/telemetry"
    assert parse_topic(topic, prefix="x/y/z").device == "d"
    with pytest.raises(TopicError):
        parse_topic(topic)


def test_prefix_trailing_slash_is_tolerated() -> None:
    topic = status_topic("s", "d", prefix="a/b/")
    assert topic == "a/b/s/d/status"
    assert parse_topic(topic, prefix="a/b/").kind == "status"


def test_site_filter() -> None:
    assert site_filter("bdnc-lab") == "livinglab/v1/bdnc-lab/#"
    assert DEFAULT_PREFIX == "livinglab/v1"


@pytest.mark.parametrize("topic", [
    "livinglab/v1/bdnc-lab/air-0001/telemetry/extra",
    "livinglab/v1/bdnc-lab/air-0001/other",
    "livinglab/v1/bdnc-lab/air-0001",
    "livinglab/v1/bdnc-lab",
    "livinglab/v1/",
    "livinglab/v2/bdnc-lab/air-0001/telemetry",
    "other/v1/bdnc-lab/air-0001/telemetry",
    "livinglab/v1/BDNC/air-0001/telemetry",
    "livinglab/v1/bdnc-lab/Air/telemetry",
    "livinglab/v1/bdnc-lab/_gateway/telemetry",
    "livinglab/v1/bdnc-lab/_gateway/gw-01/config",
    "livinglab/v1/bdnc-lab/_gateway/GW/status",
    "livinglab/v1/bdnc-lab//telemetry",
    "livinglab/v1bdnc-lab/air-0001/telemetry",
    "",
])
def test_parse_rejects(topic: str) -> None:
    with pytest.raises(TopicError) as info:
        parse_topic(topic)
    assert info.value.topic == topic
    assert topic in str(info.value) or topic == ""


@pytest.mark.parametrize(("site", "device"), [("Bad", "d"), ("s", "a/b"), ("s", "+"), ("", "d")])
def test_builders_reject_bad_ids(site: str, device: str) -> None:
    with pytest.raises(TopicError):
        telemetry_topic(site, device)


def test_gateway_builders_reject_bad_ids() -> None:
    with pytest.raises(TopicError):
        rejected_topic("s", "#")
    with pytest.raises(TopicError):
        gateway_status_topic("s", "_gateway")
    with pytest.raises(TopicError):
        site_filter("s/#")
