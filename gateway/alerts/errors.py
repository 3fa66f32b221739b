"""The alerts package's exceptions: one root, each message a line a user can act on."""

from __future__ import annotations

from ..errors import GatewayError

__all__ = ["AlertmanagerUnreachable", "AlertsError", "StateFileError"]


class AlertsError(GatewayError):
    """Root of every error ``livinglab alerts`` raises on purpose."""


class AlertmanagerUnreachable(AlertsError):
    """Alertmanager did not take the alerts (down, refused, wrong URL). The service keeps
    them and sends them again next cycle; ``--once`` reports it and exits non-zero."""

    def __init__(self, url: str, why: str) -> None:
        super().__init__(f"Alertmanager at {url} did not answer as expected: {why} "
                         "(check [alerts] alertmanager_url and that Alertmanager runs)")
        self.url = url
        self.why = why


class StateFileError(AlertsError):
    """The state file cannot be read or written; the message names the file and the fix."""
