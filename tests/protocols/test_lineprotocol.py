"""Line protocol: the contract's example, escaping, float formatting, parse round trips."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols import Point, ProtocolError, encode_lines, encode_point, make_point, parse_line
from protocols.lineprotocol import clean_string, format_float, info_companion, with_info

CONTRACT_EXAMPLE = ("air,device=air-0001,sensor=scd41,site=bdnc-lab "
                    "co2=612,humidity=48.2,temperature=22.41 1795351934120")


def test_contract_example_exactly() -> None:
    p = make_point("air", {"site": "bdnc-lab", "device": "air-0001", "sensor": "scd41"},
                   {"co2": 612, "temperature": 22.41, "humidity": 48.2}, 1795351934120)
    assert encode_point(p) == CONTRACT_EXAMPLE
    assert parse_line(CONTRACT_EXAMPLE) == p


@pytest.mark.parametrize(("point", "line"), [
    (make_point("my meas", {"t": "v"}, {"f": 1.5}, 1), "my\\ meas,t=v f=1.5 1"),
    (make_point("a,b", {"t": "v"}, {"f": 1.5}, 1), "a\\,b,t=v f=1.5 1"),
    (make_point("a=b", {}, {"f": 1.5}, 1), "a=b f=1.5 1"),
    (make_point("m", {"tag key": "tag value"}, {"f": 2.0}, 3), "m,tag\\ key=tag\\ value f=2 3"),
    (make_point("m", {"k,1": "v,1"}, {"f": 2.0}, 3), "m,k\\,1=v\\,1 f=2 3"),
    (make_point("m", {"k=1": "v=1"}, {"f": 2.0}, 3), "m,k\\=1=v\\=1 f=2 3"),
    (make_point("m", {}, {"field key,=": -0.5}, -3), "m field\\ key\\,\\==-0.5 -3"),
    (make_point("m", {"b": "2", "a": "1"}, {"z": 1.0, "y": 2.0}, 0), "m,a=1,b=2 y=2,z=1 0"),
])
def test_escaping(point: Point, line: str) -> None:
    assert encode_point(point) == line
    assert parse_line(line) == point


@pytest.mark.parametrize(("value", "text"), [
    (612.0, "612"), (612, "612"), (0.0, "0"), (-40.0, "-40"), (48.2, "48.2"),
    (22.41, "22.41"), (0.1, "0.1"), (1e9, "1000000000"),
    (1e15, "1000000000000000"), (1e16, "1e+16"), (1e20, "1e+20"), (-0.0, "-0"),
    (1e-7, "1e-07"), (123456789.123, "123456789.123"), (2.5e-300, "2.5e-300"),
])
def test_float_formatting(value: float, text: str) -> None:
    assert format_float(value) == text
    assert not text.endswith("i")
    assert float(text) == value


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
def test_non_finite_refused(value: float) -> None:
    with pytest.raises(ProtocolError):
        encode_point(make_point("m", {}, {"f": value}, 1))


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_any_finite_float_round_trips(value: float) -> None:
    p = make_point("m", {"t": "v"}, {"f": value}, 1)
    line = encode_point(p)
    assert "i " not in line
    got = parse_line(line).fields[0][1]
    assert got == value and type(got) is float


_text = st.text(st.characters(codec="utf-8", exclude_characters="\\\n\r"),
                min_size=1, max_size=12)


@given(measurement=_text, tags=st.dictionaries(_text, _text, max_size=4),
       fields=st.dictionaries(_text, st.floats(allow_nan=False, allow_infinity=False),
                              min_size=1, max_size=4),
       time_ms=st.integers(-(2**62), 2**62))
def test_round_trip(measurement: str, tags: dict[str, str], fields: dict[str, float],
                    time_ms: int) -> None:
    p = make_point(measurement, tags, fields, time_ms)
    assert parse_line(encode_point(p)) == p


@pytest.mark.parametrize(("measurement", "tags", "fields"), [
    ("", {}, {"f": 1.0}),
    ("m", {"t": ""}, {"f": 1.0}),
    ("m", {"": "v"}, {"f": 1.0}),
    ("m\\", {}, {"f": 1.0}),
    ("m", {"t": "a\nb"}, {"f": 1.0}),
    ("m", {}, {}),
])
def test_unrepresentable_points_refused(measurement: str, tags: dict[str, str],
                                        fields: dict[str, float]) -> None:
    with pytest.raises(ProtocolError):
        encode_point(make_point(measurement, tags, fields, 1))


def test_encode_lines_joins_with_newlines() -> None:
    a = make_point("air", {"site": "s"}, {"co2": 1.0}, 1)
    b = make_point("flow", {"site": "s"}, {"volume": 2.5}, 2)
    assert encode_lines([a, b]) == b"air,site=s co2=1 1\nflow,site=s volume=2.5 2"
    assert encode_lines([]) == b""


@pytest.mark.parametrize("line", [
    "", "m", "m f=1", "m f=1 ", "m f=1i 2", "m f=1u 2", "m f=true 2", "m f=t 2",
    "m f=nan 2", "m f=inf 2", "m f=1_0 2", "m,t f=1 2", "m,t= f=1 2", "m f= 2", "m =1 2",
    "m f=1 2.5", "m f=1 x", ",t=v f=1 2", "m f=1 2\nm f=1 3", "m f=1,, 2",
    'm f="s 2', 'm f="s\\" 2', 'm f="a"b 2', 'm f="a" ', 'm f=""', "m f='a' 2",
])
def test_parse_rejects(line: str) -> None:
    with pytest.raises(ProtocolError):
        parse_line(line)


# ---- string fields (the ``device`` point's ``fw``) ----------------------------------------

@pytest.mark.parametrize(("value", "text"), [
    ("0.2.0", '"0.2.0"'),
    ("", '""'),
    ('say "hi"', '"say \\"hi\\""'),
    ("C:\\fw\\", '"C:\\\\fw\\\\"'),
    ('\\"', '"\\\\\\""'),
    ("a b,c=d", '"a b,c=d"'),
    ("<script>", '"<script>"'),
    ("grüß 🌡", '"grüß 🌡"'),
])
def test_string_field_escaping(value: str, text: str) -> None:
    p = make_point("device", {"device": "air-0001", "site": "lab"},
                   {"fw": value, "online": 1}, 5)
    line = encode_point(p)
    assert line == f"device,device=air-0001,site=lab fw={text},online=1 5"
    assert parse_line(line) == p
    assert parse_line(line).fields == (("fw", value), ("online", 1.0))


def test_string_backslash_before_other_chars_is_literal() -> None:
    # InfluxDB unescapes only \" and \\ in a string; any other backslash is kept
    assert parse_line('m f="a\\tb\\n" 1').fields == (("f", "a\\tb\\n"),)


@pytest.mark.parametrize("value", ["a\nb", "a\rb", "\n"])
def test_string_with_line_break_refused(value: str) -> None:
    with pytest.raises(ProtocolError, match="line break"):
        encode_point(make_point("device", {"site": "s"}, {"fw": value}, 1))


@given(fields=st.dictionaries(
    _text, st.one_of(st.text(st.characters(codec="utf-8", exclude_characters="\n\r"),
                             max_size=20),
                     st.floats(allow_nan=False, allow_infinity=False)),
    min_size=1, max_size=4))
def test_string_and_float_fields_round_trip(fields: dict[str, float | str]) -> None:
    p = make_point("device", {"device": "d", "site": "s"}, fields, 7)
    line = encode_point(p)
    assert "\n" not in line
    back = parse_line(line)
    assert back == p
    assert [type(v) for _, v in back.fields] == [type(v) for _, v in p.fields]


# -- the _info companions (wire contract, "Strings where the store keeps none") ----------

def test_info_companion_carries_strings_as_tags() -> None:

    p = make_point("device", {"site": "s1", "device": "air-0001"},
                   {"online": 1.0, "fw": "1.0.0", "board": "pico w,x=1"}, 1700000000123)
    info = info_companion(p)
    assert info is not None
    assert info.measurement == "device_info"
    assert dict(info.tags) == {"site": "s1", "device": "air-0001", "fw": "1.0.0",
                               "board": "pico w,x=1"}
    assert info.fields == (("v", 1.0),) and info.time_ms == p.time_ms
    assert with_info(p) == (p, info)
    assert parse_line(encode_point(info)) == info  # escaping round-trips


def test_info_companion_none_without_strings() -> None:

    p = make_point("delivery", {"site": "s", "device": "d"}, {"received": 3}, 1)
    assert info_companion(p) is None and with_info(p) == (p,)


def test_info_companion_cleans_what_a_tag_cannot_hold() -> None:

    p = make_point("station", {"site": "s", "device": "d"},
                   {"note": "a\\b\u0007c\n", "room": "", "retired": 0.0, "zone": "z" * 300},
                   5)
    info = info_companion(p)
    assert info is not None
    tags = dict(info.tags)
    assert tags["note"] == "a/bc"
    assert "room" not in tags  # an empty string is no tag
    assert len(tags["zone"]) == 200
    encode_point(info)
    assert clean_string("x\u0000y\u009f" + "z" * 300) == "xy" + "z" * 198


def test_info_companion_never_overrides_a_tag() -> None:

    p = make_point("gateway", {"site": "s", "gateway": "gw1"}, {"site": "other", "up": 1}, 5)
    info = info_companion(p)
    assert info is not None and dict(info.tags) == {"site": "s", "gateway": "gw1"}
