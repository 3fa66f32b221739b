"""``livinglab device monitor --port PORT``: a board's serial console, judged live.

Every line the board prints is shown. A message line (``<device>/telemetry {...}``
or ``<device>/status {...}``, what the firmware prints in serial mode and what the
gateway's serial ingress reads) is followed by the gateway's verdict: each value
accepted (with unit and measurement) or rejected with the reason code and why,
using the same validation and the site's quantity registry (built-ins plus
``[quantities.NAME]``). Colour on a TTY (unless ``NO_COLOR`` is set), plain text
otherwise. Ctrl-C exits 0; an unplugged board is reported in one line and the
monitor waits for the port to come back.

Rendering (:func:`judge_line`) is pure; :func:`monitor` is the blocking shell.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TextIO

from gateway.ingest.serial import MAX_LINE, parse_serial_line
from protocols.config import load_config
from protocols.quantities import BUILTIN, Registry
from protocols.validate import (
    REASONS,
    Rejection,
    loads_strict,
    validate_telemetry,
    value_verdict,
)
from protocols.validate_status import validate_status

from .common import DEFAULT_CONFIG

PREFIX = "livinglab/v1"
_SAMPLE_REASONS = ("ts_in_future", "ts_too_old")


@dataclass(frozen=True)
class Verdict:
    """One judged item under a message line: a value, a sample or the whole message."""

    ok: bool
    what: str  # "scd41 co2 = 612" or "message" or "samples[1] (scd41)"
    why: str  # "ppm -> air" or "out_of_range: outside 0..40000 ppm"


def _value_text(x: object) -> str:
    s = repr(x) if not isinstance(x, str) else f'"{x}"'
    return s if len(s) <= 24 else s[:21] + "..."


def _rejected(r: Rejection) -> str:
    return f"{r.reason}: {r.detail}"


def judge_line(line: bytes, registry: Registry = BUILTIN, site: str = "monitor",
               now: float | None = None) -> list[Verdict] | None:
    """The verdicts for one printed line; None when it is not a message line."""
    parsed = parse_serial_line(line, site, PREFIX)
    if parsed is None:
        return None
    topic, payload = parsed
    device, kind = topic.split("/")[-2:]
    at = time.time() if now is None else now
    if kind == "status":
        record, rejection = validate_status(topic, payload, site, at, device)
        if rejection is not None:
            return [Verdict(False, "status", _rejected(rejection))]
        state = record.state if record is not None else "empty"
        return [Verdict(True, "status", f"state {state}")]
    outcome = validate_telemetry(topic, payload, site, at, device, registry)
    if outcome.accepted is None:
        return [Verdict(False, "message", _rejected(outcome.rejections[0]))]
    out: list[Verdict] = []
    samples = loads_strict(payload)["samples"]  # valid: the message was accepted
    for i, sample in enumerate(samples):
        sensor = sample["sensor"]
        bad = [r for r in outcome.rejections if r.reason in _SAMPLE_REASONS
               and r.detail.startswith(f"samples[{i}] ")]
        if bad:
            out.append(Verdict(False, f"samples[{i}] ({sensor})", _rejected(bad[0])))
            continue
        for name, x in sample["values"].items():
            out.append(_judge_value(sensor, str(name), x, registry))
    return out


def _judge_value(sensor: str, name: str, x: object, registry: Registry) -> Verdict:
    what = f"{sensor} {name} = {_value_text(x)}"
    reason = value_verdict(name, x, registry)
    q = registry.get(name)
    if reason is None and q is not None:
        origin = " (site-defined)" if registry.is_site(name) else ""
        return Verdict(True, what, f"{q.unit} -> {q.domain}{origin}")
    if reason == "out_of_range" and q is not None:
        return Verdict(False, what, f"out_of_range: outside {q.min:g}..{q.max:g} {q.unit}")
    if reason == "unknown_quantity":
        return Verdict(False, what, "unknown_quantity: not in the contract nor in this "
                                    f"site's [quantities] (add [quantities.{name}])")
    return Verdict(False, what, f"{reason}: {REASONS.get(str(reason), '')}")


_GREEN, _RED, _DIM, _RESET = "\x1b[32m", "\x1b[31m", "\x1b[2m", "\x1b[0m"


def render(line: bytes, verdicts: list[Verdict] | None, colour: bool) -> list[str]:
    """The printed line, then one indented line per verdict."""
    text = line.rstrip(b"\r\n").decode("utf-8", "replace")
    if verdicts is None:
        return [text]
    out = [f"{_DIM}{text}{_RESET}" if colour else text]
    for v in verdicts:
        mark = "accepted" if v.ok else "REJECTED"
        if colour:
            mark = f"{_GREEN if v.ok else _RED}{mark}{_RESET}"
        out.append(f"  {mark}  {v.what}  {v.why}")
    return out


# ---- the serial shell ---------------------------------------------------------------------

Opener = Callable[[str, int], "SerialLike"]


class SerialLike(Protocol):
    """The part of ``serial.Serial`` the monitor uses."""

    def readline(self, size: int = -1) -> bytes: ...

    def close(self) -> None: ...


def _open_serial(port: str, baud: int) -> SerialLike:
    import serial

    s: SerialLike = serial.Serial(port, baud, timeout=0.2)
    return s


def _lines(ser: SerialLike) -> Iterable[bytes]:
    """Whole lines from the port (a read timeout mid-line keeps the part)."""
    buf = b""
    while True:
        chunk = ser.readline(MAX_LINE)
        if not chunk:
            continue
        buf += chunk
        if buf.endswith(b"\n") or len(buf) >= MAX_LINE:
            yield buf
            buf = b""


def monitor(port: str, baud: int, registry: Registry, out: TextIO, colour: bool,
            opener: Opener = _open_serial, retry_s: float = 0.5) -> int:
    """Show the port until Ctrl-C (then 0); waits out an unplugged board."""
    import serial

    waiting = False
    try:
        while True:
            try:
                ser = opener(port, baud)
            except (serial.SerialException, OSError):
                if not waiting:
                    print(f"livinglab: {port} is not there (board unplugged?); "
                          "waiting for it to come back", file=out, flush=True)
                    waiting = True
                time.sleep(retry_s)
                continue
            print(f"-- {port} open at {baud} baud (Ctrl-C to quit)", file=out, flush=True)
            waiting = False
            try:
                for line in _lines(ser):
                    for text in render(line, judge_line(line, registry), colour):
                        print(text, file=out)
                    out.flush()
            except (serial.SerialException, OSError):
                print(f"livinglab: {port} vanished (board unplugged?); "
                      "waiting for it to come back", file=out, flush=True)
                waiting = True
            finally:
                ser.close()
    except KeyboardInterrupt:
        return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Adds ``device monitor`` to the ``device`` sub-commands."""
    m = sub.add_parser("monitor", help="a board's serial console with live validation",
                       description="Print every line the board prints; each telemetry/status "
                                   "line is validated against the site's quantities and every "
                                   "value shown accepted or rejected with the reason.")
    m.add_argument("--port", required=True, help="serial port, e.g. /dev/ttyACM0")
    m.add_argument("--config", type=Path, default=None, metavar="FILE",
                   help=f"TOML config whose [quantities] apply (default: ./{DEFAULT_CONFIG} "
                        "when present, else the contract's quantities only)")
    m.add_argument("--baud", type=int, default=115200, help="baud rate (default 115200)")
    m.add_argument("--color", choices=["auto", "always", "never"], default="auto",
                   help="colour the verdicts (auto: on a TTY unless NO_COLOR is set)")
    m.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    path: Path | None = args.config
    if path is None and DEFAULT_CONFIG.exists():
        path = DEFAULT_CONFIG
    registry = load_config(path).registry if path is not None else BUILTIN
    colour = args.color == "always" or (args.color == "auto" and sys.stdout.isatty()
                                        and not os.environ.get("NO_COLOR"))
    return monitor(args.port, args.baud, registry, sys.stdout, colour)
