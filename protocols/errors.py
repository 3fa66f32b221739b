"""The protocols package's exception hierarchy: one root, one subclass per concern."""

from __future__ import annotations


class ProtocolError(Exception):
    """Root of every error this package raises on purpose (bad line, bad id, bad payload)."""


class TopicError(ProtocolError):
    """A topic that is not one of the contract's topics, or carries an invalid id.

    ``topic`` is kept so a caller can report which topic it was without parsing the message.
    """

    def __init__(self, topic: str, why: str) -> None:
        super().__init__(f"bad topic {topic!r}: {why}")
        self.topic = topic
        self.why = why


class ConfigError(ProtocolError):
    """A config file or override is missing, unreadable or invalid.

    The message names the key and the fix, on one line, so the CLI can print it as is.
    """
