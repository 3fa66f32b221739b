"""The opendata package's exception root (one-line messages naming the fix)."""

from __future__ import annotations

from gateway.errors import GatewayError

__all__ = ["ExportError"]


class ExportError(GatewayError):
    """Bad time range, output path or store trouble during a report or an export."""
