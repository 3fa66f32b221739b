"""The gateway's exception hierarchy: one root, subclasses carrying what a user needs."""

from __future__ import annotations

from protocols.errors import ConfigError

__all__ = ["ConfigError", "GatewayError", "one_line"]


class GatewayError(Exception):
    """Root of every error the gateway raises on purpose."""


def one_line(exc: BaseException, limit: int = 200) -> str:
    """``TypeName: message`` on one line, at most ``limit`` characters: the detail of
    an ``internal_error`` quarantine row or report (an error no rule foresaw)."""
    text = " ".join(str(exc).split())
    return (f"{type(exc).__name__}: {text}" if text else type(exc).__name__)[:limit]
