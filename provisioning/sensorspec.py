"""``--sensor`` arguments (``scd41``, ``scd41@i2c1:0x62``, ``pms5003@uart2``,
``yfs201@pin15``) into :class:`SensorSpec`, defaults from the catalogue."""

from __future__ import annotations

import re

from devices import catalogue
from devices.catalogue import BoardProfile
from devices.inventory import SensorSpec

from .errors import ProvisioningError

_SPEC = re.compile(r"^(?P<kind>[a-z0-9_]{1,32})(?:@(?P<where>[a-z0-9:]+))?$")


def parse_sensor(text: str, board: BoardProfile) -> SensorSpec:
    """One ``--sensor`` value; the board's pin map fills in what is not given."""
    m = _SPEC.match(text.strip().lower())
    if not m:
        raise ProvisioningError(f"--sensor '{text}': expected KIND[@i2cN[:ADDR]|@uartN|@pinN] "
                                "(e.g. scd41, scd41@i2c1:0x62, pms5003@uart1)")
    profile = catalogue.sensor(m["kind"])
    where = m["where"] or ""
    try:
        if profile.bus == "i2c":
            bus, _, addr = where.partition(":")
            address = int(addr, 0) if addr else profile.default_address
            return SensorSpec(kind=profile.kind, bus=bus or "i2c0", address=address)
        if profile.bus == "uart":
            return SensorSpec(kind=profile.kind, uart=int(where[4:]) if where else 1)
        if profile.bus == "pulse":
            default = board.pins.get("flow_pulse", 15)
            pin = int(where[3:]) if where else int(default)
            return SensorSpec(kind=profile.kind, pin=pin)
        if profile.bus == "pin":  # an ADC or GPIO pin read directly
            pin = int(where[3:]) if where else int(board.pins.get(profile.kind, 26))
            return SensorSpec(kind=profile.kind, pin=pin)
    except ValueError:
        raise ProvisioningError(f"--sensor '{text}': bad bus, address or pin number") from None
    return SensorSpec(kind=profile.kind, bus=where)
