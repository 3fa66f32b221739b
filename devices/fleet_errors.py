"""Errors of the simulated fleet and the demo, for a person to read.

Each message is one line naming the problem and the fix; the CLI prints it as
``livinglab: <message>`` and exits 2.
"""

from __future__ import annotations

from .errors import DevicesError


class FleetError(DevicesError):
    """Every error the fleet, the embedded broker and the demo raise on purpose."""


class BrokerUnreachable(FleetError):
    """The configured MQTT broker does not accept connections."""

    def __init__(self, host: str, port: int, reason: str) -> None:
        super().__init__(f"MQTT broker {host}:{port} unreachable: {reason} "
                         "(start the broker or fix [mqtt] host/port in the config)")
        self.host = host
        self.port = port


class FirmwareMissing(FleetError):
    """The firmware package or the micropython binary is not available."""
