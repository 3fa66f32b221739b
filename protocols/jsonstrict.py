"""The one JSON reader for everything a device sends (telemetry, status, serial lines).

Why one: a hostile payload must mean the same thing to the gateway, the console and
every CLI subscriber. ``json.loads`` alone accepts ``NaN``/``Infinity`` (not JSON),
recurses until Python's limit on ``[[[[...`` (and a ``RecursionError`` escapes from
places that do not expect it), and turns ``"\\ud800"`` into a ``str`` that no UTF-8
encoder (SQLite, line protocol, HTTP) can write back out. :func:`loads_strict` refuses
all three with one :class:`JsonError` (a ``ValueError``), so a caller handles one
exception and keeps a value it can store anywhere.

Cost on the gateway's hot path: two ``bytes.count`` calls for the depth (the exact
scan runs only when the payload holds more brackets than the limit), one ``translate`` and
substring search for a run of 19 digits, and orjson, which is as strict as this reader (it refuses
NaN/Infinity, invalid UTF-8 and lone surrogates) and ~4x faster than the stdlib's.
Whatever orjson refuses, and any payload holding a 19-digit run (orjson turns an
integer beyond 64 bits into a float where the stdlib keeps an int; a float with that
many digits takes this path too, harmlessly), goes through the stdlib decoder: the
verdict and message are the stdlib path's, so the two can never disagree on what is
accepted (1e400 is the one case orjson refuses that the stdlib reads: as infinity,
which validation then rejects value by value). ``tests/protocols/test_jsonstrict.py``
checks both paths agree.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

__all__ = ["MAX_DEPTH", "JsonError", "json_depth", "loads_strict"]

#: deepest nesting accepted: telemetry needs 4 (message, samples, sample, values)
MAX_DEPTH = 32

_STRINGS = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)  # unrolled: linear, no backtracking
_BRACKETS = bytes(range(256)).translate(None, b"[]{}")  # every byte but the four
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
# digits -> "1", every other byte -> " ": a run of 19 digits is then one C substring
# search (a regex for it cost 5 us a payload, three times orjson's parse)
_DIGIT_MAP = bytes(0x31 if 0x30 <= b <= 0x39 else 0x20 for b in range(256))
_LONG_RUN = b"1" * 19


class JsonError(ValueError):
    """Not RFC 8259 JSON in UTF-8, nested deeper than :data:`MAX_DEPTH`, or holding a
    string no UTF-8 encoder can write (a lone surrogate)."""


def _no_constants(name: str) -> Any:
    raise JsonError(f"{name} is not JSON")


_DECODER = json.JSONDecoder(parse_constant=_no_constants)


def json_depth(raw: bytes) -> int:
    """Deepest bracket nesting of ``raw``, outside strings (exact for valid JSON)."""
    depth = deepest = 0
    for b in _STRINGS.sub(b"", raw).translate(None, _BRACKETS):
        if b == 0x5B or b == 0x7B:  # [ {
            depth += 1
            if depth > deepest:
                deepest = depth
        else:
            depth -= 1
    return deepest


def loads_strict(payload: bytes | str, max_depth: int = MAX_DEPTH) -> Any:
    """Parse ``payload`` as RFC 8259 JSON from strict UTF-8; raises :class:`JsonError`.

    Refused: invalid UTF-8, ``NaN``/``Infinity``/``-Infinity``, nesting deeper than
    ``max_depth``, and strings (keys included) holding a lone UTF-16 surrogate escape
    (``"\\ud800"``): RFC 8259 section 8.2 leaves them undefined and UTF-8 cannot carry
    them. A valid surrogate pair (an emoji) is fine.
    """
    raw = payload.encode("utf-8", "surrogatepass") if isinstance(payload, str) else payload
    if (raw.count(b"[") + raw.count(b"{") <= max_depth
            and _LONG_RUN not in raw.translate(_DIGIT_MAP)):
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass  # the stdlib path below gives the verdict and its message
    return _loads_stdlib(raw, max_depth)


def _loads_stdlib(raw: bytes, max_depth: int) -> Any:
    """The reference path (and the one for whatever orjson refuses)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise JsonError(f"not UTF-8: {exc.reason} at byte {exc.start}") from None
    if raw.count(b"[") + raw.count(b"{") > max_depth and json_depth(raw) > max_depth:
        raise JsonError(f"nested deeper than {max_depth}")
    try:
        obj = _DECODER.decode(text)
    except RecursionError:
        raise JsonError("nested too deep") from None
    except JsonError:
        raise
    except ValueError as exc:
        raise JsonError(str(exc)) from None
    if b"\\u" in raw and _SURROGATE_ESCAPE.search(raw) is not None:
        try:  # rare: only payloads that escape a surrogate get here (pairs included)
            json.dumps(obj, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise JsonError("a string holds a lone surrogate (\\ud800-\\udfff): "
                            "not encodable as UTF-8") from None
    return obj
