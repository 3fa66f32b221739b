"""The provisioning package's exception root and its user-facing errors.

Messages are one line, ``<what> (<fix>)``, printed by the CLI as ``livinglab: ...``.
"""

from __future__ import annotations

DIALOUT_FIX = ("add yourself to the dialout group: sudo usermod -aG dialout $USER, "
               "then log in again")


class ProvisioningError(Exception):
    """Root of every error the provisioning package raises on purpose."""


class SettingsError(ProvisioningError):
    """The ``[provisioning]`` or ``[wifi]`` section of the config is invalid."""


class PortError(ProvisioningError):
    """The serial port does not exist, is busy, or may not be opened."""

    def __init__(self, port: str, message: str) -> None:
        super().__init__(message)
        self.port = port


class NotMicroPythonError(ProvisioningError):
    """The other end of the port does not answer like a MicroPython raw REPL."""

    def __init__(self, port: str, detail: str = "") -> None:
        super().__init__(
            f"{port}: the other end is not MicroPython{' (' + detail + ')' if detail else ''} "
            "(install MicroPython first: livinglab device install-micropython, "
            "or pick the right port: livinglab device list-ports)")
        self.port = port


class WrongBoardError(ProvisioningError):
    """The board on the port is not the ``--board`` asked for."""

    def __init__(self, port: str, board: str, platform: str, candidates: list[str]) -> None:
        guess = f"; it looks like --board {' or '.join(candidates)}" if candidates else ""
        super().__init__(f"{port}: wrong board: expected {board} but MicroPython reports "
                         f"sys.platform '{platform}'{guess} (check --board and --port)")
        self.port, self.board, self.platform = port, board, platform


class BoardError(ProvisioningError):
    """Code run on the board raised an exception."""

    def __init__(self, message: str, errno: int | None = None) -> None:
        super().__init__(message)
        self.errno = errno


class BoardFullError(BoardError):
    """The board's filesystem has no room left (OSError ENOSPC on the board)."""


class BrokerError(ProvisioningError):
    """The MQTT broker cannot be reached or refused us; ``reason`` is the short cause."""

    def __init__(self, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason or message


class DeviceIdError(ProvisioningError):
    """A device id that does not follow the wire contract."""


class ImageError(ProvisioningError):
    """A MicroPython image file is missing or is not what the board needs."""


class FirmwareMissingError(ProvisioningError):
    """The ``firmware`` package (the files to copy) is not installed."""
