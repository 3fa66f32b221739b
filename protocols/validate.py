"""The validation stage: raw MQTT payload -> accepted points plus rejection reports.

Pure functions, no I/O. This is the gateway's hot path (10,000+ messages/s on one
core), so it checks the output of the one strict JSON reader
(:mod:`protocols.jsonstrict`) with exact-type tests instead of building pydantic
models per message; ``tests/protocols`` proves it agrees with the
models in :mod:`protocols.models`. Every rule of the contract's Validation section
lives in :func:`validate_telemetry`; the reason codes are listed in ``REASONS`` and
documented in ``docs/wire-contract-reference.md``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, Literal, NamedTuple

from .errors import ProtocolError
from .jsonstrict import loads_strict as loads_strict
from .lineprotocol import Point, field_key, line_head
from .quantities import BUILTIN, Registry
from .validate_shape import (
    _DETAIL_MAX,
    _check_clock,
    _check_samples,
    _decode,
    _header,
    _Reject,
    _short,
)
from .validate_shape import MAX_COUNTER as MAX_COUNTER  # re-exported: part of the API
from .validate_shape import MAX_PAYLOAD as MAX_PAYLOAD
from .validate_shape import MAX_SAMPLES as MAX_SAMPLES
from .validate_shape import MAX_VALUES as MAX_VALUES

MIN_TIME = 1577836800.0  # 2020-01-01T00:00:00Z
MAX_FUTURE_S = 300.0
#: reports per message (wire contract, "Rejection reports, bounded"); the rest are
#: summed up in one ``too_many_rejections`` report carrying their count
MAX_REPORTS = 16

REASONS: dict[str, str] = {
    # whole message
    "too_large": "payload longer than 16384 bytes",
    "not_json": "not UTF-8, not RFC 8259 JSON (NaN/Infinity included), nested deeper than "
                "32, or a string holding a lone surrogate (\\ud800: no UTF-8 for it)",
    "not_object": "the JSON document is not an object",
    "missing_field": "a required field is absent",
    "mistyped_field": "a field has the wrong JSON type (no coercion: \"7\" and true are not 7)",
    "invalid_field": "a field has the right type but a value outside its rule "
                     "(boot/seq range, sample count, status state)",
    "bad_version": "v is an integer other than 1",
    "device_mismatch": "the payload's device differs from the topic's device (spoofing)",
    "bad_sample": "a malformed sample: not an object, bad/absent sensor, both or neither of "
                  "ts/age, ts/age not a number, negative age, values not an object of 1..32",
    # one sample
    "ts_in_future": "sample time more than 300 s after the gateway's receive time",
    "ts_too_old": "sample time before 2020-01-01T00:00:00Z",
    # one value
    "unknown_quantity": "a quantity name neither the contract nor the site's [quantities] "
                        "defines",
    "mistyped_value": "a value that is not a JSON number",
    "not_finite": "a number too large for a double (e.g. 1e400)",
    "out_of_range": "a value outside the quantity's inclusive range",
    # other topics
    "bad_topic": "a topic under the site that the contract does not define",
    # bounds and the gateway's own failures (issue 15: no single message stops a gateway)
    "too_many_rejections": "after 16 reports for one message, one report with the count of "
                           "its other rejected samples and values (field count)",
    "internal_error": "the gateway failed on this message in a way no rule foresaw; it was "
                      "isolated from its batch, quarantined and acked (detail: the error)",
    "port_not_allowed": "a serial line for a device id that [gateway.serial_ids] does not "
                        "map to its port",
    "unencodable": "an accepted message whose points cannot be written as line protocol "
                   "(quarantined, never reported: validation should have caught it)",
    "store_rejected": "a point the store refused for good (HTTP 400/413/422 or a line it "
                      "cannot parse): dead-lettered by the forwarder, never retried",
}
Reason = Literal[
    "too_large", "not_json", "not_object", "missing_field", "mistyped_field", "invalid_field",
    "bad_version", "device_mismatch", "bad_sample", "ts_in_future", "ts_too_old",
    "unknown_quantity", "mistyped_value", "not_finite", "out_of_range", "bad_topic",
    "too_many_rejections", "internal_error", "port_not_allowed", "unencodable",
    "store_rejected"]


@dataclass(frozen=True, slots=True)
class Rejection:
    """One rejected message, sample or value, as reported on the ``rejected`` topic."""

    topic: str
    device: str | None
    reason: str
    detail: str
    #: ``too_many_rejections`` only: how many rejected samples/values it stands for
    count: int | None = None

    def to_json(self) -> bytes:
        """The report payload: ``{"topic", "device", "reason", "detail"}`` (plus
        ``count`` on a ``too_many_rejections`` report). ASCII: ``json.dumps`` escapes
        whatever a topic holds, so a report can always be published."""
        doc: dict[str, object] = {"topic": self.topic, "device": self.device,
                                  "reason": self.reason, "detail": self.detail}
        if self.count is not None:
            doc["count"] = self.count
        return json.dumps(doc, separators=(",", ":")).encode("utf-8")


#: What identifies a telemetry message: (device, boot, seq). The dedup record, the
#: delivery accounting and the buffer all key on it.
MessageKey = tuple[str, int, int]


class Accepted(NamedTuple):
    """A message that passed whole-message validation (maybe with zero points left).

    It is accepted even when every sample or value was rejected, so its
    (device, boot, seq) is recorded and a redelivery is recognised as a duplicate.
    A NamedTuple, like :class:`Outcome`: one of each is made per message on the hot
    path, and a frozen dataclass's ``__init__`` costs an ``object.__setattr__`` a field.
    """

    device: str
    boot: int
    seq: int
    points: tuple[Point, ...]
    #: the points already encoded as line protocol (newline-joined UTF-8), when
    #: :func:`validate_telemetry` was asked to encode in the same pass; then ``points``
    #: is empty and the buffer stores ``body`` as it is
    body: bytes | None = None


class Outcome(NamedTuple):
    """``accepted`` is None when the whole message was rejected (then one rejection)."""

    accepted: Accepted | None
    rejections: tuple[Rejection, ...]


@dataclass(frozen=True, slots=True)
class StatusRecord:
    """A valid status message: its fields and the ``device`` health point to store."""

    device: str
    state: Literal["online", "offline"]
    #: float and str fields as sent; ``update`` (when sent) as a dict of str
    fields: dict[str, float | str | dict[str, str]]
    point: Point


def validate_telemetry(topic: str, payload: bytes, site: str, received_at: float,
                       device: str, registry: Registry = BUILTIN, *,
                       encode: bool = False) -> Outcome:
    """Validate one telemetry message received at ``received_at`` (Unix s) on ``topic``.

    ``registry`` is the site's quantities (the built-ins plus ``[quantities.NAME]``);
    a site quantity is checked exactly like a built-in and lands in its own domain.

    ``device`` is the topic's device (the caller parsed the topic). Never raises on
    any payload. Returns the points to store, one per (sample, domain), and one
    :class:`Rejection` per rejected message, sample or value. A non-finite
    ``received_at`` is the caller's bug, not the device's: ValueError.

    ``encode``: return the points as line protocol in ``Accepted.body`` instead of
    :class:`Point` objects (the gateway's hot path: one pass, no object per point;
    the same bytes :func:`~protocols.lineprotocol.encode_lines` gives for the points,
    which ``tests/protocols`` checks). A message whose names the encoder refuses
    falls back to points, so the buffer quarantines it as ``unencodable``.
    """
    _check_clock(received_at)
    try:
        obj = _decode(payload)
        dev, boot, seq, raw_samples = _header(obj, device)
        samples = _check_samples(raw_samples)
    except _Reject as r:
        return Outcome(None, (Rejection(topic, device, r.reason, r.detail),))

    rules = registry.rules  # quantity -> (min, max, domain): one dict lookup per value
    rejections: list[Rejection] = []
    unreported = 0  # beyond MAX_REPORTS: counted, not described
    points: list[Point] = []
    lines: list[str] = []
    keq = _KEY_EQ
    latest = received_at + MAX_FUTURE_S
    # only the encoder raises, for a name line protocol cannot carry (never a contract
    # name): then points, which the buffer quarantines as unencodable
    try:
        for i, (sensor, t, is_age, values) in enumerate(samples):
            when = received_at - t if is_age else t
            if not MIN_TIME <= when <= latest:  # also catches +/-inf from 1e400
                if len(rejections) >= MAX_REPORTS:
                    unreported += 1
                    continue
                reason = "ts_in_future" if when > latest else "ts_too_old"
                what = f"received_at - age = {when!r}" if is_age else f"ts {when!r}"
                rejections.append(Rejection(
                    topic, device, reason, f"samples[{i}] ({sensor}): {what}, received at "
                    f"{received_at!r}"))
                continue
            by_domain: dict[str, list[tuple[str, Any]]] = {}
            for name, x in values.items():
                rule = rules.get(name)
                vt = type(x)
                if rule is not None and (vt is float or vt is int) and rule[0] <= x <= rule[1]:
                    if encode:  # name=value as encode_point writes it (format_float inlined:
                        txt = repr(float(x))  # the value is known finite; once per value)
                        item: tuple[str, Any] = (name, (keq.get(name) or _key_eq(name)) +
                                                 (txt[:-2] if txt[-2:] == ".0" else txt))
                    else:
                        item = (name, float(x))
                    fields = by_domain.get(rule[2])
                    if fields is None:
                        by_domain[rule[2]] = [item]
                    else:
                        fields.append(item)
                    continue
                if len(rejections) >= MAX_REPORTS:
                    unreported += 1
                    continue
                bad = _bad_value(rule, x)
                rejections.append(Rejection(topic, device, bad,
                                            _value_detail(i, sensor, name, x, bad, registry)))
            if not by_domain:
                continue
            time_ms = round(when * 1000.0)
            if encode:
                stamp = f" {time_ms}"
                for domain, fields in by_domain.items():
                    if len(fields) > 1:
                        fields.sort()  # by name: names are unique within a sample
                    lines.append(f"{line_head(domain, dev, sensor, site)} " +
                                 ",".join(map(_second, fields)) + stamp)
            else:
                tags = (("device", dev), ("sensor", sensor), ("site", site))
                for domain, fields in by_domain.items():
                    fields.sort()
                    points.append(Point(domain, tags, tuple(fields), time_ms))
    except ProtocolError:
        return validate_telemetry(topic, payload, site, received_at, device, registry)
    if unreported:
        rejections.append(Rejection(
            topic, device, "too_many_rejections", f"{unreported} more rejected samples or "
            f"values in this message (the first {MAX_REPORTS} are reported one by one)",
            count=unreported))
    if encode:
        return Outcome(Accepted(dev, boot, seq, (), "\n".join(lines).encode()),
                       tuple(rejections))
    return Outcome(Accepted(dev, boot, seq, tuple(points)), tuple(rejections))


_KEY_EQ: dict[str, str] = {}  # quantity name -> its escaped field key and "="
_second = itemgetter(1)


def _key_eq(name: str) -> str:
    """A quantity's escaped field key and ``=``, as :func:`encode_point` writes it;
    remembered for the next message (bounded: names come from the registry)."""
    key = field_key(name) + "="
    if len(_KEY_EQ) < 4096:
        _KEY_EQ[name] = key
    return key


def _bad_value(rule: tuple[float, float, str] | None, x: object) -> Reason:
    """Why a value that failed the hot path's one-line test is rejected."""
    vt = type(x)
    if rule is None:
        return "unknown_quantity"
    if vt is not float and vt is not int:
        return "mistyped_value"
    if vt is float and not math.isfinite(x):  # type: ignore[arg-type]
        return "not_finite"
    return "out_of_range"


def value_verdict(name: str, x: object, registry: Registry = BUILTIN) -> Reason | None:
    """None when ``registry`` accepts value ``x`` of quantity ``name``, else the reason
    (the same rule :func:`validate_telemetry` applies to each value)."""
    rule = registry.rules.get(name)
    vt = type(x)
    if rule is not None and (vt is float or vt is int) and \
            rule[0] <= x <= rule[1]:  # type: ignore[operator]
        return None
    return _bad_value(rule, x)


def _value_detail(i: int, sensor: str, name: str, x: object, reason: str,
                  registry: Registry) -> str:
    head = f"samples[{i}] ({sensor}) {_short(name)}={_short(x)}"
    q = registry.get(name) if reason == "out_of_range" else None
    if q is not None:
        return f"{head} outside {q.min:g}..{q.max:g} {q.unit}"[:_DETAIL_MAX]
    return head[:_DETAIL_MAX]
