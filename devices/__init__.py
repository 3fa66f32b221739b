"""Devices: the board/sensor catalogue, the fleet inventory and ``livinglab devices``.

(The simulated fleet and the demo live here too, in their own modules.)
"""

from __future__ import annotations

__all__ = ["catalogue", "errors", "inventory"]
