"""Units of every exported column: the contract's canonical units and their UCUM codes."""

from __future__ import annotations

from protocols import QUANTITIES

__all__ = ["UCUM", "unit_of", "ucum_of"]

# canonical unit (wire contract) -> UCUM case-sensitive code (https://ucum.org)
UCUM = {
    "ppm": "[ppm]", "ppb": "[ppb]", "degC": "Cel", "%RH": "%", "hPa": "hPa",
    "ug/m3": "ug/m3", "lx": "lx", "K": "K", "L/min": "L/min", "L": "L",
    "dBm": "dB[mW]", "B": "By", "s": "s", "1": "1", "dBA": "dB",
}

# the ``device`` measurement's fields (status messages)
_DEVICE = {"rssi": "dBm", "heap_free": "B", "uptime": "s", "online": "1"}


def unit_of(domain: str, quantity: str) -> str:
    """The canonical unit of a quantity ('' when unknown)."""
    if domain == "device":
        return _DEVICE.get(quantity, "")
    if domain == "delivery":
        return "1"
    q = QUANTITIES.get(quantity)
    return q.unit if q is not None else ""


def ucum_of(unit: str) -> str:
    return UCUM.get(unit, unit)
