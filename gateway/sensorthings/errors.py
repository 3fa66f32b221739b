"""The package's exceptions: one for the command line, one for a client's request."""

from __future__ import annotations

from ..errors import GatewayError

__all__ = ["ApiError", "SensorThingsError"]


class SensorThingsError(GatewayError):
    """The service cannot start (port busy, bad address, store unreadable): one line."""


class ApiError(Exception):
    """A request the API refuses: ``status`` (4xx) and a message for the client.

    Rendered as the standard's error body ``{"code", "type": "error", "message"}``.
    """

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def bad_request(message: str) -> ApiError:
    return ApiError(400, message)


def not_found(message: str) -> ApiError:
    return ApiError(404, message)
