"""Check firmware output against the wire contract (the protocols package when present)."""

from __future__ import annotations

import json
import math
from typing import Any

from tests.firmware.device import SITE, Received

try:
    import protocols
except ImportError:  # pragma: no cover - protocols is written in parallel
    protocols = None  # type: ignore[assignment]

RANGES = {"co2": (0, 40000), "temperature": (-40, 85), "humidity": (0, 100),
          "pressure": (300, 1100), "pm1_0": (0, 1000), "pm2_5": (0, 1000), "pm10": (0, 1000),
          "illuminance": (0, 200000), "flow_rate": (0, 1000), "volume": (0, 1e9)}


def _local_check(obj: Any, device: str, received_at: float) -> list[str]:
    errs: list[str] = []
    if not isinstance(obj, dict) or obj.get("v") != 1 or obj.get("device") != device:
        return [f"bad header: {obj!r}"]
    for k in ("boot", "seq"):
        if type(obj.get(k)) is not int or not 0 <= obj[k] < 2**31:
            errs.append(f"bad {k}")
    samples = obj.get("samples")
    if not isinstance(samples, list) or not 1 <= len(samples) <= 256:
        return errs + ["bad samples"]
    for s in samples:
        if ("ts" in s) == ("age" in s):
            errs.append("exactly one of ts/age")
        t = s.get("ts", received_at - s.get("age", 0))
        if not 1577836800 <= t <= received_at + 300:
            errs.append(f"time out of range: {t}")
        for q, v in s["values"].items():
            lo, hi = RANGES.get(q, (math.nan, math.nan))
            if not (isinstance(v, int | float) and lo <= v <= hi):
                errs.append(f"{q}={v!r}")
    return errs


def check_telemetry(msg: Received, device: str) -> list[str]:
    """Every problem the gateway would report for this message (empty: accepted whole)."""
    if protocols is not None and hasattr(protocols, "validate_telemetry"):
        out = protocols.validate_telemetry(msg.topic, msg.payload, SITE, msg.at, device)
        problems = [f"{r.reason}: {r.detail}" for r in out.rejections]
        if out.accepted is None and not problems:
            problems.append("rejected")
        return problems
    return _local_check(json.loads(msg.payload), device, msg.at)
