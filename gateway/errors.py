"""The gateway's exception hierarchy: one root, subclasses carrying what a user needs."""

from __future__ import annotations

from protocols.errors import ConfigError

__all__ = ["ConfigError", "GatewayError"]


class GatewayError(Exception):
    """Root of every error the gateway raises on purpose."""
