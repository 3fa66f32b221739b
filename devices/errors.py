"""The devices package's exception root and the user-facing errors under it.

Each message is one line naming what is wrong and how to fix it, so the CLI can
print it as is (``livinglab: <message>``).
"""

from __future__ import annotations


class DevicesError(Exception):
    """Root of every error the devices package raises on purpose."""


class CatalogueError(DevicesError):
    """A board or sensor profile file is missing or invalid (a packaging bug)."""


class UnknownBoardError(DevicesError):
    """A board name that has no profile in ``devices/boards/``."""

    def __init__(self, board: str, known: list[str]) -> None:
        super().__init__(f"unknown board '{board}' (known boards: {', '.join(known)})")
        self.board = board


class UnknownSensorError(DevicesError):
    """A sensor kind that has no profile in ``devices/sensors/``."""

    def __init__(self, kind: str, known: list[str]) -> None:
        super().__init__(f"unknown sensor kind '{kind}' (known sensors: {', '.join(known)})")
        self.kind = kind


class InventoryError(DevicesError):
    """The inventory database cannot be opened or written."""


class DeviceNotFoundError(InventoryError):
    """A device id that is not in the inventory."""

    def __init__(self, device: str) -> None:
        super().__init__(f"device '{device}' is not in the inventory "
                         "(run 'livinglab devices' to list known devices)")
        self.device = device
