"""The console's exception root and its user-facing errors."""

from __future__ import annotations

from ..errors import GatewayError


class ConsoleError(GatewayError):
    """Root of every error the console raises on purpose; the message is one line."""
