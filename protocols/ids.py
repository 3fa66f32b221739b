"""Identifier rules of the wire contract (site, device, gateway, sensor).

The compiled patterns are anchored with ``\\Z`` rather than ``$`` so ``match`` and
``fullmatch`` both refuse a trailing newline (Python's ``$`` accepts one).
The ``*_PATTERN`` strings are the same rules in JSON-Schema/ECMA syntax.
"""

from __future__ import annotations

import re

ID_PATTERN = "^[a-z0-9][a-z0-9-]{0,62}$"
SENSOR_PATTERN = "^[a-z0-9_]{1,32}$"

ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}\Z")
SENSOR_RE = re.compile(r"^[a-z0-9_]{1,32}\Z")


def is_id(s: object) -> bool:
    """True when ``s`` is a valid site, device or gateway id (safe as a topic level and tag)."""
    return type(s) is str and ID_RE.match(s) is not None


def is_sensor(s: object) -> bool:
    """True when ``s`` is a valid sensor model name such as ``scd41``."""
    return type(s) is str and SENSOR_RE.match(s) is not None
