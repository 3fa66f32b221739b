"""Strings a device sends that the gateway stores: what they may not hold.

The wire contract: "Strings stored anywhere hold no control characters". A string
that reaches a store also has to be writable as UTF-8 (line protocol, SQLite, HTTP):
a lone surrogate (``"\\ud800"`` in JSON) is not, and used to make the line-protocol
encoder raise on a *validated* status. One compiled pattern, one ``search`` per
string: cheap enough for every status message.
"""

from __future__ import annotations

import re

__all__ = ["BAD_TEXT", "text_problem"]

#: C0 controls, DEL, and the UTF-16 surrogates (which no UTF-8 encoder accepts)
BAD_TEXT = re.compile(r"[\u0000-\u001f\u007f\ud800-\udfff]")


def text_problem(s: str) -> str | None:
    """None when ``s`` can be stored as it is, else why not (for a rejection's detail)."""
    m = BAD_TEXT.search(s)
    if m is None:
        return None
    c = m.group()
    if "\ud800" <= c <= "\udfff":
        return f"holds a lone surrogate U+{ord(c):04X} (not encodable as UTF-8)"
    return f"holds a control character U+{ord(c):04X}"
