"""The shape of a telemetry message: size, strict JSON, the header and each sample.

Split from :mod:`protocols.validate` (which checks times and values and encodes);
both validators (telemetry and :mod:`protocols.validate_status`) use it. Pure; each
check raises :class:`_Reject` with the whole message's one reason.
"""

from __future__ import annotations

import math
from typing import Any

from .ids import is_sensor
from .jsonstrict import loads_strict

MAX_PAYLOAD = 16384
MAX_SAMPLES = 256
MAX_VALUES = 32
MAX_COUNTER = 2**31 - 1
_DETAIL_MAX = 200

__all__ = ["MAX_COUNTER", "MAX_PAYLOAD", "MAX_SAMPLES", "MAX_VALUES"]


def _short(x: object) -> str:
    s = repr(x)
    return s if len(s) <= 60 else s[:57] + "..."


def _as_float(x: int | float) -> float:
    """``float(x)`` that maps ints beyond the double range to +/-inf instead of raising."""
    try:
        return float(x)
    except OverflowError:
        return math.inf if x > 0 else -math.inf


class _Reject(Exception):
    """Internal: aborts a whole message with one reason."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        self.detail = detail[:_DETAIL_MAX]


def _int_field(obj: dict[str, Any], key: str) -> int:
    if key not in obj:
        raise _Reject("missing_field", f"{key!r} is required")
    x = obj[key]
    if type(x) is not int:
        raise _Reject("mistyped_field", f"{key!r} must be an integer, got {_short(x)}")
    return x


def _header(obj: object, device: str) -> tuple[str, int, int, list[Any]]:
    if type(obj) is not dict:
        raise _Reject("not_object", f"top level is {type(obj).__name__}, not an object")
    v = _int_field(obj, "v")
    if "device" not in obj:
        raise _Reject("missing_field", "'device' is required")
    dev = obj["device"]
    if type(dev) is not str:
        raise _Reject("mistyped_field", f"'device' must be a string, got {_short(dev)}")
    boot = _int_field(obj, "boot")
    seq = _int_field(obj, "seq")
    if "samples" not in obj:
        raise _Reject("missing_field", "'samples' is required")
    samples = obj["samples"]
    if type(samples) is not list:
        raise _Reject("mistyped_field", f"'samples' must be an array, got {_short(samples)}")
    if v != 1:
        raise _Reject("bad_version", f"v is {v}, this gateway speaks v1")
    if dev != device:
        raise _Reject("device_mismatch", f"payload device {_short(dev)} on the topic of {device!r}")
    for name, n in (("boot", boot), ("seq", seq)):
        if not 0 <= n <= MAX_COUNTER:
            raise _Reject("invalid_field", f"{name} {n} outside 0..2^31-1")
    if not 1 <= len(samples) <= MAX_SAMPLES:
        raise _Reject("invalid_field", f"{len(samples)} samples, expected 1..{MAX_SAMPLES}")
    return dev, boot, seq, samples


def _is_number(x: object) -> bool:
    t = type(x)
    return t is int or t is float


def _check_sample(i: int, s: object) -> tuple[str, float, bool, dict[str, Any]]:
    """Returns (sensor, ts-or-age, is_age, values) or raises bad_sample."""
    if type(s) is not dict:
        raise _Reject("bad_sample", f"samples[{i}] is not an object")
    sensor = s.get("sensor")
    if not is_sensor(sensor):
        raise _Reject("bad_sample", f"samples[{i}].sensor {_short(sensor)} is not a sensor id")
    has_ts, has_age = "ts" in s, "age" in s
    if has_ts == has_age:
        raise _Reject("bad_sample", f"samples[{i}] needs exactly one of ts and age")
    key = "age" if has_age else "ts"
    t = s[key]
    if not _is_number(t):
        raise _Reject("bad_sample", f"samples[{i}].{key} {_short(t)} is not a number")
    if has_age and t < 0:
        raise _Reject("bad_sample", f"samples[{i}].age {t} is negative")
    values = s.get("values")
    if type(values) is not dict or not 1 <= len(values) <= MAX_VALUES:
        raise _Reject("bad_sample", f"samples[{i}].values must be an object of 1..{MAX_VALUES}")
    return sensor, _as_float(t), has_age, values  # type: ignore[return-value]


_SENSORS_OK: set[str] = set()  # sensor ids already found valid (bounded below)


def _check_samples(raw: list[Any]) -> list[tuple[str, float, bool, dict[str, Any]]]:
    """:func:`_check_sample` for every sample, with the usual shape (a known-good
    sensor id, a numeric ``ts`` or ``age`` alone, 1..32 values) decided inline: this
    runs for every sample of every message. Anything else goes through
    :func:`_check_sample`, which gives the verdict and its message."""
    out = []
    for i, s in enumerate(raw):
        if type(s) is dict:
            sensor = s.get("sensor")
            values = s.get("values")
            if (type(sensor) is str and sensor in _SENSORS_OK and type(values) is dict
                    and 0 < len(values) <= MAX_VALUES):
                t = s.get("ts")
                if type(t) is float and "age" not in s:
                    out.append((sensor, t, False, values))
                    continue
                if t is None and "ts" not in s:
                    t = s.get("age")
                    if type(t) is float and t >= 0.0:
                        out.append((sensor, t, True, values))
                        continue
        checked = _check_sample(i, s)
        if len(_SENSORS_OK) < 4096:
            _SENSORS_OK.add(checked[0])
        out.append(checked)
    return out


def _decode(payload: bytes) -> object:
    """Size limit, then strict RFC 8259 JSON: the first two whole-message rules."""
    if len(payload) > MAX_PAYLOAD:
        raise _Reject("too_large", f"{len(payload)} bytes, limit {MAX_PAYLOAD}")
    try:
        return loads_strict(payload)
    except ValueError as exc:
        raise _Reject("not_json", str(exc)) from None


def _check_clock(received_at: float) -> None:
    if not math.isfinite(received_at):
        raise ValueError(f"received_at {received_at!r} is not a finite Unix time")
