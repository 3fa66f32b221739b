"""The wire contract in code: ids, topics, quantities, line protocol, validation, models.

Everything the gateway, firmware tests and provisioning share about what goes over
MQTT and into InfluxDB. See ``docs/wire-contract-reference.md``.
"""

from typing import TYPE_CHECKING, Any

from .errors import ProtocolError, TopicError
from .ids import ID_RE, SENSOR_RE, is_id, is_sensor
from .jsonstrict import JsonError, loads_strict
from .lineprotocol import Point, encode_lines, encode_point, make_point, parse_line
from .quantities import (
    BUILTIN,
    DOMAINS,
    QUANTITIES,
    RESERVED_DOMAINS,
    Quantity,
    QuantityError,
    Registry,
    site_quantity,
)
from .text import text_problem
from .topics import (
    DEFAULT_PREFIX,
    TopicInfo,
    config_topic,
    gateway_status_topic,
    parse_topic,
    rejected_topic,
    site_filter,
    status_topic,
    telemetry_topic,
)
from .validate import (
    REASONS,
    Accepted,
    MessageKey,
    Outcome,
    Rejection,
    StatusRecord,
    validate_telemetry,
    value_verdict,
)
from .validate_status import validate_status

if TYPE_CHECKING:
    from .models import DeviceConfig, GatewayStatus, RejectionReport, Sample, Status, Telemetry

#: the pydantic models, imported on first use: building them costs a gateway's start
#: more than everything else it imports (issue 21, "first point within 0.5 s")
_MODELS = frozenset({"DeviceConfig", "GatewayStatus", "RejectionReport", "Sample", "Status",
                     "Telemetry"})


def __getattr__(name: str) -> Any:
    if name in _MODELS:
        from . import models

        return getattr(models, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "BUILTIN",
    "DEFAULT_PREFIX",
    "DOMAINS",
    "ID_RE",
    "JsonError",
    "QUANTITIES",
    "REASONS",
    "RESERVED_DOMAINS",
    "SENSOR_RE",
    "Accepted",
    "MessageKey",
    "DeviceConfig",
    "GatewayStatus",
    "Outcome",
    "Point",
    "ProtocolError",
    "Quantity",
    "QuantityError",
    "Registry",
    "Rejection",
    "RejectionReport",
    "Sample",
    "Status",
    "StatusRecord",
    "Telemetry",
    "TopicError",
    "TopicInfo",
    "config_topic",
    "encode_lines",
    "encode_point",
    "gateway_status_topic",
    "is_id",
    "is_sensor",
    "loads_strict",
    "make_point",
    "parse_line",
    "parse_topic",
    "rejected_topic",
    "site_filter",
    "site_quantity",
    "status_topic",
    "telemetry_topic",
    "text_problem",
    "validate_status",
    "validate_telemetry",
    "value_verdict",
]
