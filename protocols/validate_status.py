"""Validation of device status messages (birth, last will, OTA update state).

Split from :mod:`protocols.validate` (telemetry, the hot path); the same rules:
pure, exact types, one reason code per rejection.
"""

from __future__ import annotations

from .lineprotocol import Point, clean_string
from .text import text_problem
from .validate import Rejection, StatusRecord
from .validate_shape import MAX_COUNTER, _check_clock, _decode, _is_number, _Reject, _short

_STATUS_STR = ("fw", "board", "ip")
#: ``update.state`` values (wire contract, "Status additions")
UPDATE_STATES = ("downloading", "staged", "confirmed", "refused", "rolled_back")
#: ``fw`` is stored as a string field of the ``device`` point: no control characters
FW_PATTERN = r"^[^\u0000-\u001f\u007f]*$"
# (name, min, max): integers; interval_s as the device config allows it
_STATUS_INT: tuple[tuple[str, int, int], ...] = (
    ("boot", 0, MAX_COUNTER), ("heap_free", 0, MAX_COUNTER), ("interval_s", 1, 86400),
    ("dropped", 0, MAX_COUNTER), ("sensor_errors", 0, MAX_COUNTER))
#: the float fields of the ``device`` point besides ``online``
_POINT_NUM = frozenset(("rssi", "heap_free", "uptime", "boot", "interval_s", "dropped",
                        "sensor_errors"))
# (name, min, max): rssi in dBm, uptime in seconds; inclusive, so inf is out of range.
_STATUS_NUM: tuple[tuple[str, float, float], ...] = (
    ("rssi", -200, 200), ("uptime", 0, MAX_COUNTER))


def validate_status(topic: str, payload: bytes, site: str, received_at: float,
                    device: str) -> tuple[StatusRecord | None, Rejection | None]:
    """Validate a device status message (birth, or the last will ``{"state":"offline"}``).

    An empty payload is how MQTT clears a retained message: neither a status nor an
    error, so it returns ``(None, None)``. Unknown keys are ignored. The point has
    measurement ``device``, tags ``device``/``site``, float fields ``rssi``,
    ``heap_free``, ``uptime``, ``boot``, ``interval_s``, ``dropped``, ``sensor_errors``
    when present and ``online`` (1.0/0.0), the string fields ``fw``, ``board`` and
    ``update_version``/``update_state``/``update_reason`` when present, at
    ``received_at``. ``update`` (OTA progress) is also kept as a dict in the record's
    fields. The LWT ``{"state":"offline"}`` gives ``online`` = 0.0 alone.
    """
    _check_clock(received_at)
    if not payload:
        return None, None
    try:
        obj = _decode(payload)
        record = _status(obj, site, received_at, device)
    except _Reject as r:
        return None, Rejection(topic, device, r.reason, r.detail)
    return record, None


def _status(obj: object, site: str, received_at: float, device: str) -> StatusRecord:
    if type(obj) is not dict:
        raise _Reject("not_object", f"top level is {type(obj).__name__}, not an object")
    if "state" not in obj:
        raise _Reject("missing_field", "'state' is required")
    state = obj["state"]
    if type(state) is not str:
        raise _Reject("mistyped_field", f"'state' must be a string, got {_short(state)}")
    if state not in ("online", "offline"):
        raise _Reject("invalid_field", f"state {_short(state)} is not online/offline")
    fields: dict[str, float | str | dict[str, str]] = {}
    for key in _STATUS_STR:
        if key in obj:
            x = obj[key]
            if type(x) is not str:
                raise _Reject("mistyped_field", f"{key!r} must be a string, got {_short(x)}")
            _text(key, x)
            fields[key] = x
    if "update" in obj:
        fields["update"] = _update(obj["update"])
    for key, lo_i, hi_i in _STATUS_INT:
        if key in obj:
            x = obj[key]
            if type(x) is not int:
                raise _Reject("mistyped_field", f"{key!r} must be an integer, got {_short(x)}")
            if not lo_i <= x <= hi_i:
                raise _Reject("invalid_field", f"{key} {x} outside {lo_i}..{hi_i}")
            fields[key] = float(x)
    for key, lo, hi in _STATUS_NUM:
        if key in obj:
            x = obj[key]
            if not _is_number(x):
                raise _Reject("mistyped_field", f"{key!r} must be a number, got {_short(x)}")
            if not lo <= x <= hi:
                raise _Reject("invalid_field", f"{key} {_short(x)} outside {lo}..{hi}")
            fields[key] = float(x)
    point = Point("device", (("device", device), ("site", site)), _point_fields(fields, state),
                  _ms(received_at))
    return StatusRecord(device, "online" if state == "online" else "offline", fields, point)


def _point_fields(fields: dict[str, float | str | dict[str, str]], state: str
                  ) -> tuple[tuple[str, float | str], ...]:
    """The ``device`` point's fields (wire contract, "Device points, more fields"): the
    numbers, ``online``, and the strings ``fw``, ``board``, ``update_*`` without control
    characters (a status from the contract's own example has none to lose)."""
    out: list[tuple[str, float | str]] = [
        (k, v) for k, v in fields.items() if k in _POINT_NUM and type(v) is float]
    out.append(("online", 1.0 if state == "online" else 0.0))
    for key in ("fw", "board"):
        v = fields.get(key)
        if isinstance(v, str):
            out.append((key, clean_string(v)))
    update = fields.get("update")
    if isinstance(update, dict):
        out.extend((f"update_{k}", clean_string(v)) for k, v in update.items())
    return tuple(sorted(out))


def _ms(t: float) -> int:
    """Unix seconds -> ms, total for any float the caller's clock gives (a broken clock
    must not make validation raise: the property tests feed it 1e305 and NaN)."""
    ms = t * 1000.0
    return round(ms) if ms == ms and abs(ms) < 2.0**62 else 0


def _update(u: object) -> dict[str, str]:
    """``update``: ``{"version": str, "state": one of UPDATE_STATES, "reason"?: str}``;
    other keys are ignored, like the status's own."""
    if type(u) is not dict:
        raise _Reject("mistyped_field", f"'update' must be an object, got {_short(u)}")
    out: dict[str, str] = {}
    for key in ("version", "state", "reason"):
        if key not in u:
            if key == "reason":
                continue
            raise _Reject("missing_field", f"'update.{key}' is required")
        x = u[key]
        if type(x) is not str:
            raise _Reject("mistyped_field", f"'update.{key}' must be a string, got {_short(x)}")
        _text(f"update.{key}", x)
        out[key] = x
    if out["state"] not in UPDATE_STATES:
        raise _Reject("invalid_field", f"update.state {_short(out['state'])} is not one of "
                                       + "/".join(UPDATE_STATES))
    return out


def _text(key: str, x: str) -> None:
    """Every status string is stored (a string field, its ``_info`` tag, the console):
    no control characters, nothing UTF-8 cannot carry (wire contract, "Strings where
    the store keeps none")."""
    why = text_problem(x)
    if why is not None:
        raise _Reject("invalid_field", f"{key!r} {_short(x)} {why}")
