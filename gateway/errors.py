"""The gateway's exception hierarchy: one root, subclasses carrying what a user needs."""

from __future__ import annotations


class GatewayError(Exception):
    """Root of every error the gateway raises on purpose."""


class ConfigError(GatewayError):
    """A config file or override is missing, unreadable or invalid.

    The message names the key and the fix, on one line, so the CLI can print it as is.
    """
