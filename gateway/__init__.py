"""The gateway: MQTT (and serial) in, validated, durably buffered, forwarded to the store."""

from protocols.config import Config, load_config

from .errors import ConfigError, GatewayError

__all__ = ["Config", "ConfigError", "GatewayError", "load_config"]
