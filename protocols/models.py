"""Pydantic v2 models of every payload: the typed edge, the schema source, the docs.

Not used per message on the gateway's hot path (see :mod:`protocols.validate`, which
tests prove equivalent on the whole-message rules). Types are strict: ``"7"`` is not
an int, ``true`` is not a number. Optional fields may be absent but never ``null``
(the firmware omits what it does not know), except where a model says otherwise.
Device-facing payloads ignore unknown keys; the gateway's own payloads forbid them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    WithJsonSchema,
    model_validator,
)

from .ids import ID_PATTERN, SENSOR_PATTERN
from .quantities import QUANTITIES
from .validate import MAX_COUNTER, MAX_SAMPLES, MAX_VALUES, REASONS
from .validate_status import FW_PATTERN, UPDATE_STATES

Id = Annotated[StrictStr, Field(pattern=ID_PATTERN)]
SensorId = Annotated[StrictStr, Field(pattern=SENSOR_PATTERN)]
Counter = Annotated[StrictInt, Field(ge=0, le=MAX_COUNTER)]
Number = StrictInt | StrictFloat
#: a status string: stored, so no control characters (protocols.text)
Text = Annotated[StrictStr, Field(pattern=FW_PATTERN)]
_TEXT_SCHEMA = {"type": "string", "pattern": FW_PATTERN}


def _number(lo: float, hi: float) -> Any:
    """A JSON number (int or float, never bool) in ``lo..hi`` inclusive (so finite)."""
    return Annotated[
        Annotated[StrictInt, Field(ge=lo, le=hi)] | Annotated[StrictFloat, Field(ge=lo, le=hi)],
        WithJsonSchema({"type": "number", "minimum": lo, "maximum": hi}),
    ]


def _not_null(schema: dict[str, Any]) -> Any:
    """Schema for an optional field that may be absent but not ``null``."""
    return WithJsonSchema(schema)


def _drop_null_defaults(schema: dict[str, Any]) -> None:
    """``default: null`` would contradict "absent, never null" in the published schema."""
    for prop in schema.get("properties", {}).values():
        if "default" in prop and prop["default"] is None:
            del prop["default"]


class _Payload(BaseModel):
    """Shared config: strict, frozen; optional fields may be absent but not null."""

    model_config = ConfigDict(strict=True, frozen=True, extra="ignore",
                              json_schema_extra=_drop_null_defaults)

    @model_validator(mode="after")
    def _no_explicit_null(self) -> Self:
        for name in self.model_fields_set:
            if getattr(self, name) is None:
                raise ValueError(f"{name} may be omitted but not null")
        return self


def _values_schema() -> dict[str, Any]:
    """What a conforming device sends: known quantities in range (see the contract table).

    The gateway is more tolerant than this schema: a bad value rejects only itself.
    """
    return {
        "type": "object",
        "minProperties": 1,
        "maxProperties": MAX_VALUES,
        "additionalProperties": False,
        "properties": {
            q.name: {"type": "number", "minimum": q.min, "maximum": q.max,
                     "description": f"{q.unit}, measurement {q.domain!r}"}
            for q in QUANTITIES.values()
        },
    }


def _sample_schema(schema: dict[str, Any]) -> None:
    _drop_null_defaults(schema)
    schema["oneOf"] = [{"required": ["ts"]}, {"required": ["age"]}]


class Sample(_Payload):
    """One reading of one sensor: exactly one of ``ts`` (device clock) and ``age``."""

    model_config = ConfigDict(json_schema_extra=_sample_schema)

    sensor: SensorId = Field(description="sensor model, e.g. scd41")
    ts: Annotated[Number | None, _not_null({"type": "number"})] = Field(
        default=None, description="Unix time of the sample in seconds, by the device clock")
    age: Annotated[
        Annotated[StrictInt, Field(ge=0)] | Annotated[StrictFloat, Field(ge=0)] | None,
        _not_null({"type": "number", "minimum": 0}),
    ] = Field(default=None, description="seconds between the sample and the gateway's receipt")
    values: Annotated[dict[str, Any], Field(min_length=1, max_length=MAX_VALUES),
                      WithJsonSchema(_values_schema())] = Field(
        description="quantity name -> finite number in its canonical unit")

    @model_validator(mode="after")
    def _one_time(self) -> Self:
        if ("ts" in self.model_fields_set) == ("age" in self.model_fields_set):
            raise ValueError("exactly one of ts and age")
        return self


class Telemetry(_Payload):
    """``livinglab/v1/{site}/{device}/telemetry``; ``device`` must equal the topic's."""

    v: Annotated[StrictInt, Field(ge=1, le=1), WithJsonSchema({"type": "integer", "const": 1})
                 ] = Field(description="protocol version")
    device: Id = Field(description="must equal the topic's {device}")
    boot: Counter = Field(description="changes on every boot of the device")
    seq: Counter = Field(description="+1 per telemetry message within one boot, from 0")
    samples: Annotated[list[Sample], Field(min_length=1, max_length=MAX_SAMPLES)] = Field(
        description="the readings")


def _status_schema(schema: dict[str, Any]) -> None:
    """``update`` may be absent but not null: its schema is the object's alone."""
    _drop_null_defaults(schema)
    prop = schema["properties"]["update"]
    ref = next(a for a in prop.pop("anyOf") if a.get("type") != "null")
    prop.update(ref)


class StatusUpdate(_Payload):
    """``update`` in a status: the device's last firmware update (wire contract, "Status
    additions"); it stays in every status until the next update."""

    version: Text = Field(description="the version the update is for")
    state: Literal[UPDATE_STATES] = Field(  # type: ignore[valid-type]
        description="downloading, staged, confirmed, refused or rolled_back")
    reason: Annotated[Text | None, _not_null(_TEXT_SCHEMA)] = Field(
        default=None, description="why, for refused and rolled_back")


class Status(_Payload):
    """``.../{device}/status`` (retained): birth message, and the will ``{"state":"offline"}``.

    Additions to the contract's example: the ranges below (rssi in dBm, uptime in s),
    ``fw`` without control characters (the gateway stores it as a string field of the
    ``device`` point), and ``update`` (OTA progress).
    """

    model_config = ConfigDict(json_schema_extra=_status_schema)

    state: Literal["online", "offline"] = Field(description="offline is also the last will")
    fw: Annotated[Annotated[StrictStr, Field(pattern=FW_PATTERN)] | None, _not_null(
        {"type": "string", "pattern": FW_PATTERN})] = Field(
        default=None, description="running firmware version; stored as the device point's "
                                  "string field fw")
    board: Annotated[Text | None, _not_null(_TEXT_SCHEMA)] = Field(
        default=None, description="board kind: pico_w, esp32, unix")
    ip: Annotated[Text | None, _not_null(_TEXT_SCHEMA)] = Field(
        default=None, description="the device's IP address")
    boot: Annotated[Counter | None, _not_null(
        {"type": "integer", "minimum": 0, "maximum": MAX_COUNTER})] = Field(
        default=None, description="the boot id its telemetry carries")
    heap_free: Annotated[Counter | None, _not_null(
        {"type": "integer", "minimum": 0, "maximum": MAX_COUNTER})] = Field(
        default=None, description="free heap in bytes")
    interval_s: Annotated[Annotated[StrictInt, Field(ge=1, le=86400)] | None, _not_null(
        {"type": "integer", "minimum": 1, "maximum": 86400})] = Field(
        default=None, description="the sampling period in use, seconds")
    dropped: Annotated[Counter | None, _not_null(
        {"type": "integer", "minimum": 0, "maximum": MAX_COUNTER})] = Field(
        default=None, description="telemetry messages the device discarded since boot")
    sensor_errors: Annotated[Counter | None, _not_null(
        {"type": "integer", "minimum": 0, "maximum": MAX_COUNTER})] = Field(
        default=None, description="sensor reads that failed since boot")
    rssi: Annotated[_number(-200, 200) | None, _not_null(  # type: ignore[valid-type]
        {"type": "number", "minimum": -200, "maximum": 200})] = Field(
        default=None, description="Wi-Fi signal strength in dBm")
    uptime: Annotated[_number(0, MAX_COUNTER) | None, _not_null(  # type: ignore[valid-type]
        {"type": "number", "minimum": 0, "maximum": MAX_COUNTER})] = Field(
        default=None, description="seconds since boot")
    update: StatusUpdate | None = Field(
        default=None, description="the last firmware update: version, state, reason")


class DeviceConfig(_Payload):
    """``.../{device}/config`` (retained). Devices ignore keys they do not know.

    ``calibration`` is this project's optional addition: an additive offset per
    quantity, in its canonical unit, applied by the device before sending.
    """

    interval_s: Annotated[StrictInt, Field(ge=1, le=86400)] = Field(
        description="sampling period in seconds")
    calibration: Annotated[dict[str, Number] | None, _not_null({
        "type": "object",
        "propertyNames": {"enum": sorted(QUANTITIES)},
        "additionalProperties": {"type": "number"},
    })] = Field(default=None, description="quantity -> additive offset, canonical unit")

    @model_validator(mode="after")
    def _known_quantities(self) -> Self:
        unknown = set(self.calibration or ()) - set(QUANTITIES)
        if unknown:
            raise ValueError(f"calibration for unknown quantities {sorted(unknown)}")
        return self


class GatewayStatus(BaseModel):
    """``.../_gateway/{gateway}/status`` (retained): the gateway's health, this project's own.

    Counters are totals since ``started_at``; an offline last will carries only
    ``state``, ``gateway`` and ``site``.
    """

    model_config = ConfigDict(strict=True, frozen=True, extra="forbid", allow_inf_nan=False)

    state: Literal["online", "offline"] = Field(description="offline is also the last will")
    gateway: Id = Field(description="the gateway's id, as in its topic")
    site: Id = Field(description="the one site this gateway serves")
    version: StrictStr | None = Field(default=None, description="livinglab package version")
    started_at: StrictFloat | None = Field(default=None, description="Unix time of start")
    ts: StrictFloat | None = Field(default=None, description="Unix time of this report")
    received: Annotated[StrictInt, Field(ge=0)] | None = Field(
        default=None, description="telemetry messages received")
    accepted: Annotated[StrictInt, Field(ge=0)] | None = Field(
        default=None, description="telemetry messages accepted (not duplicates)")
    rejected: Annotated[StrictInt, Field(ge=0)] | None = Field(
        default=None, description="rejection reports published (messages, samples, values)")
    duplicates: Annotated[StrictInt, Field(ge=0)] | None = Field(
        default=None, description="duplicate messages dropped")
    forwarded: Annotated[StrictInt, Field(ge=0)] | None = Field(
        default=None, description="points acknowledged by the store")
    buffer_depth: Annotated[StrictInt, Field(ge=0)] | None = Field(
        default=None, description="points in the durable buffer, not yet forwarded")
    buffer_full: StrictBool | None = Field(
        default=None,
        description="true while acks are held back: buffer at its bound or disk full")
    disk_full: StrictBool | None = Field(
        default=None, description="true while the file system under the buffer is full")


class RejectionReport(BaseModel):
    """``.../_gateway/{gateway}/rejected``: one per rejected message, sample or value,
    at most 16 per message and then one ``too_many_rejections`` with the ``count`` of
    the rest (wire contract, "Rejection reports, bounded")."""

    model_config = ConfigDict(strict=True, frozen=True, extra="forbid", allow_inf_nan=False)

    topic: StrictStr = Field(description="the topic the rejected message arrived on")
    device: Id | None = Field(description="the topic's device; null if the topic has none")
    reason: Literal[tuple(REASONS)] = Field(  # type: ignore[valid-type]
        description="stable snake_case code, see the reasons table")
    detail: StrictStr = Field(description="human-readable, at most 200 characters")
    count: Annotated[Annotated[StrictInt, Field(ge=1)] | None, _not_null(
        {"type": "integer", "minimum": 1})] = Field(
        default=None, description="too_many_rejections only: how many more rejected samples "
                                  "and values of the message it stands for")
