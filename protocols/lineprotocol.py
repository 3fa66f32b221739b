"""InfluxDB line protocol for the points the gateway stores: encode and parse.

Only what the contract needs: float fields (never the ``i`` integer suffix, so a
field keeps one type across writes whatever the device sent), string fields
(the ``device`` point's ``fw``), millisecond timestamps, and the escaping rules
(measurement: comma and space; tag keys, tag values, field keys: comma, equals
sign and space; string field values: double quote and backslash, inside double
quotes). Backslashes and line breaks in names are refused outright: no contract
name can contain them, and refusing them keeps escaping unambiguous. A line
break in a string value is refused too: line protocol cannot carry one.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache

from .errors import ProtocolError

_FORBIDDEN = ("\\", "\n", "\r")


@dataclass(frozen=True, slots=True)
class Point:
    """One line: tags and fields are tuples sorted by key (use :func:`make_point`).

    A field value is a float, or a ``str`` for a string field.
    """

    measurement: str
    tags: tuple[tuple[str, str], ...]
    fields: tuple[tuple[str, float | str], ...]
    time_ms: int


def make_point(measurement: str, tags: Mapping[str, str], fields: Mapping[str, float | str],
               time_ms: int) -> Point:
    """Build a :class:`Point` with tags and fields sorted by key; numbers become floats,
    strings stay string fields."""
    return Point(measurement, tuple(sorted(tags.items())),
                 tuple(sorted((k, v if isinstance(v, str) else float(v))
                              for k, v in fields.items())), time_ms)


#: longest string the gateway stores (wire contract: room, zone, note at most 200)
MAX_STRING = 200
_CONTROL = re.compile(r"[\u0000-\u001f\u007f-\u009f]")
INFO_SUFFIX = "_info"


def clean_string(s: str, limit: int = MAX_STRING) -> str:
    """A string as the store keeps it: control characters removed, at most ``limit``
    characters (wire contract, "Strings where the store keeps none")."""
    return _CONTROL.sub("", s)[:limit]


def info_companion(p: Point) -> Point | None:
    """The ``{measurement}_info`` point of ``p``, or None when ``p`` has no string field.

    Same tags and timestamp, each string field as a tag of the same name, one field
    ``v`` = 1.0 (the Prometheus "info metric": VictoriaMetrics drops string fields but
    keeps tags). A tag cannot hold an empty string or a backslash (this encoder refuses
    backslashes in names), so an empty string field gives no tag and a backslash
    becomes ``/``; control characters are removed. Pure; the caller writes both points.
    """
    extra = [(k, _CONTROL.sub("", v).replace("\\", "/")[:MAX_STRING])
             for k, v in p.fields if isinstance(v, str)]
    if not extra:
        return None
    have = {k for k, _ in p.tags}
    tags = dict(p.tags)
    for k, v in extra:
        if v and k not in have:
            tags[k] = v
    return Point(p.measurement + INFO_SUFFIX, tuple(sorted(tags.items())), (("v", 1.0),),
                 p.time_ms)


def with_info(p: Point) -> tuple[Point, ...]:
    """``p`` followed by its ``_info`` companion when it has string fields."""
    info = info_companion(p)
    return (p,) if info is None else (p, info)


def _checked(s: str, what: str) -> str:
    if not s:
        raise ProtocolError(f"empty {what} in line protocol")
    for bad in _FORBIDDEN:
        if bad in s:
            raise ProtocolError(f"{what} {s!r} contains {bad!r}, not representable")
    return s


@lru_cache(maxsize=4096)
def _esc_measurement(s: str) -> str:
    return _checked(s, "measurement").replace(",", "\\,").replace(" ", "\\ ")


@lru_cache(maxsize=4096)
def _esc_key(s: str) -> str:
    """Tag keys, tag values and field keys share one escaping rule."""
    return _checked(s, "key or tag value").replace(",", "\\,").replace("=", "\\=").replace(
        " ", "\\ ")


def format_float(v: float) -> str:
    """Shortest text that reads back as exactly ``v`` and that InfluxDB types as a float.

    Integral values below 1e16 are written without ``.0`` (``612``), like the contract's
    example; InfluxDB reads a bare number as a float. Everything else is ``repr``
    (``48.2``, ``1e+16``). Never the ``i`` suffix.
    """
    if type(v) is not float:
        v = float(v)
    if v - v != 0.0:  # inf - inf and nan - nan are nan
        raise ProtocolError(f"field value {v!r} is not finite")
    r = repr(v)
    return r[:-2] if r.endswith(".0") else r


def format_string(v: str) -> str:
    """A string field value: in double quotes, ``"`` and ``\\`` escaped with a backslash
    (the InfluxDB line protocol rule); a line break is refused."""
    if "\n" in v or "\r" in v:
        raise ProtocolError(f"string field value {v[:40]!r} contains a line break, "
                            "not representable")
    return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _value(v: float | str) -> str:
    return format_string(v) if isinstance(v, str) else format_float(v)


@lru_cache(maxsize=4096)
def _head(measurement: str, tags: tuple[tuple[str, str], ...]) -> str:
    """Measurement and tag set, escaped: the same for every point of one device sensor."""
    head = _esc_measurement(measurement)
    if tags:
        head += "," + ",".join([_esc_key(k) + "=" + _esc_key(v) for k, v in tags])
    return head


#: field keys as :func:`encode_point` writes them (escaped, checked), for one-pass encoders
field_key = _esc_key

_HEADS: dict[tuple[str, str, str, str], str] = {}


def line_head(measurement: str, device: str, sensor: str, site: str) -> str:
    """The escaped measurement and tag set of a reading point (tags ``device``,
    ``sensor``, ``site``): what :func:`encode_point` writes before the fields, cached
    per (measurement, device, sensor, site) for the validation's one-pass encoding.
    Raises :class:`ProtocolError` for a name line protocol cannot carry."""
    key = (measurement, device, sensor, site)
    head = _HEADS.get(key)
    if head is None:
        head = _head(measurement, (("device", device), ("sensor", sensor), ("site", site)))
        if len(_HEADS) >= 16384:  # a bound: a fleet's sensors, not every id ever sent
            _HEADS.clear()
        _HEADS[key] = head
    return head


def encode_point(p: Point) -> str:
    """One line of line protocol, without the trailing newline."""
    if not p.fields:
        raise ProtocolError(f"point {p.measurement!r} has no fields")
    if type(p.time_ms) is not int:
        raise ProtocolError(f"timestamp {p.time_ms!r} is not an int")
    body = ",".join([_esc_key(k) + "=" + _value(v) for k, v in p.fields])
    return f"{_head(p.measurement, p.tags)} {body} {p.time_ms}"


def encode_lines(points: Iterable[Point]) -> bytes:
    """Newline-joined UTF-8 lines, as the write APIs take them (no trailing newline).

    A string UTF-8 cannot carry (a lone surrogate) is a :class:`ProtocolError` like any
    other unrepresentable value, never a ``UnicodeEncodeError`` escaping to the caller.
    """
    text = "\n".join(map(encode_point, points))
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ProtocolError(f"{text[max(exc.start - 20, 0):exc.start]!r}... holds "
                            f"{text[exc.start]!r}, not encodable as UTF-8") from None


_ESCAPABLE = frozenset(", =")


def _scan(line: str, i: int, stops: str) -> tuple[str, int]:
    """Read an escaped token from ``i`` up to the first unescaped char in ``stops``."""
    out: list[str] = []
    n = len(line)
    while i < n:
        c = line[i]
        if c == "\\" and i + 1 < n and line[i + 1] in _ESCAPABLE:
            out.append(line[i + 1])
            i += 2
            continue
        if c in stops:
            break
        out.append(c)
        i += 1
    return "".join(out), i


def parse_line(line: str) -> Point:
    """Inverse of :func:`encode_point`; raises :class:`ProtocolError` on anything else.

    Accepts float fields (a bare or decimal/exponent number) and string fields (in
    double quotes, ``\\"`` and ``\\\\`` unescaped; a backslash before anything else
    stays, as InfluxDB reads it); integer (``i``) and boolean fields are refused
    because this project never writes them.
    """
    if "\n" in line or "\r" in line:
        raise ProtocolError("one line expected, got a line break")
    measurement, i = _scan(line, 0, ", ")
    if not measurement:
        raise ProtocolError(f"no measurement in {line!r}")
    tags: list[tuple[str, str]] = []
    while i < len(line) and line[i] == ",":
        key, i = _scan(line, i + 1, "=, ")
        if i >= len(line) or line[i] != "=" or not key:
            raise ProtocolError(f"bad tag near column {i} in {line!r}")
        value, i = _scan(line, i + 1, ", ")
        if not value:
            raise ProtocolError(f"empty tag value for {key!r} in {line!r}")
        tags.append((key, value))
    if i >= len(line) or line[i] != " ":
        raise ProtocolError(f"no fields in {line!r}")
    fields: list[tuple[str, float | str]] = []
    i += 1
    while True:
        key, i = _scan(line, i, "=, ")
        if i >= len(line) or line[i] != "=" or not key:
            raise ProtocolError(f"bad field near column {i} in {line!r}")
        if line.startswith('"', i + 1):
            text, i = _scan_string(line, i + 2)
            fields.append((key, text))
        else:
            raw, i = _scan(line, i + 1, ", ")
            fields.append((key, _parse_float(raw, line)))
        if i < len(line) and line[i] == ",":
            i += 1
            continue
        break
    if i >= len(line) or line[i] != " ":
        raise ProtocolError(f"no timestamp in {line!r}")
    stamp = line[i + 1:]
    if not stamp or not stamp.lstrip("-").isdigit() or not stamp.isascii():
        raise ProtocolError(f"bad timestamp {stamp!r} in {line!r}")
    # by key only: a repeated key may hold a float and a string, which do not compare
    return Point(measurement, tuple(sorted(tags)), tuple(sorted(fields, key=_key)),
                 int(stamp))


def _key(field: tuple[str, float | str]) -> str:
    return field[0]


def _scan_string(line: str, i: int) -> tuple[str, int]:
    """A string field value from just after its opening quote to just after the closing one."""
    out: list[str] = []
    n = len(line)
    while i < n:
        c = line[i]
        if c == "\\" and i + 1 < n and line[i + 1] in '"\\':
            out.append(line[i + 1])
            i += 2
            continue
        if c == '"':
            return "".join(out), i + 1
        out.append(c)
        i += 1
    raise ProtocolError(f"string field value without its closing quote in {line!r}")


def _parse_float(raw: str, line: str) -> float:
    if not raw or raw[-1] in "iu" or raw[0] == '"' or "_" in raw or not raw.isascii():
        raise ProtocolError(f"field value {raw!r} is not a float in {line!r}")
    try:
        v = float(raw)
    except ValueError:
        raise ProtocolError(f"field value {raw!r} is not a float in {line!r}") from None
    if not math.isfinite(v) or raw.lower().lstrip("+-") in ("nan", "inf", "infinity"):
        raise ProtocolError(f"field value {raw!r} is not finite in {line!r}")
    return v
