"""What a rule produces: an alert, identified by its labels (as Alertmanager does).

An :class:`Alert` is the rule's verdict for one cycle: its labels (``alertname``,
``severity``, ``site``, ``device`` or ``gateway``, ``quantity``), its annotations
(``summary``, ``runbook_url``) and, when the data says when the trouble began, a
``since_ms`` hint. Whether it is *new* and which ``startsAt`` it carries is the
state's business (:mod:`gateway.alerts.state`), not the rule's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["RUNBOOK_BASE", "Alert", "Memory", "Severity", "alert_key", "device_ref", "runbook_url"]

Severity = Literal["critical", "warning", "info"]

#: Where docs/alerts.md is published; each alert's ``runbook_url`` is a section of it.
RUNBOOK_BASE = "https://livinglab.example.org/docs/alerts.md"

#: The labels an alert may carry, in the order ``--once`` prints them.
LABEL_ORDER = ("site", "device", "gateway", "quantity", "severity")


def runbook_url(alertname: str) -> str:
    """The section of docs/alerts.md for ``alertname`` (its heading is the name)."""
    return f"{RUNBOOK_BASE}#{alertname.lower()}"


def alert_key(labels: Mapping[str, str]) -> str:
    """A stable identity for a label set (Alertmanager's fingerprint works the same way)."""
    return ",".join(f"{k}={labels[k]}" for k in sorted(labels))


@dataclass(frozen=True)
class Alert:
    """One firing alert as a rule sees it this cycle."""

    labels: Mapping[str, str]
    summary: str
    #: when the trouble began, if the data says so (Unix ms); else the first cycle that saw it
    since_ms: int | None = None
    extra: Mapping[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.labels["alertname"]

    @property
    def key(self) -> str:
        return alert_key(self.labels)

    @property
    def annotations(self) -> dict[str, str]:
        return {"summary": self.summary, "runbook_url": runbook_url(self.name), **self.extra}

    def line(self) -> str:
        """``ALERTNAME site=S device=D|gateway=G [quantity=Q] severity=X`` (``--once``)."""
        parts = [self.name] + [f"{k}={self.labels[k]}" for k in LABEL_ORDER if k in self.labels]
        return " ".join(parts)


@dataclass(frozen=True)
class Memory:
    """What the rules remember between cycles (kept in the state file).

    ``offline_since``: "site/device" -> when its current offline run began, so a
    repeated last-will point does not restart the clock. ``update_first``:
    "site/device" -> (update_version, update_state, time of the first ``device`` point
    with that pair), so an hour is counted from the first point, not from each repeat.
    """

    offline_since: Mapping[str, int] = field(default_factory=dict)
    update_first: Mapping[str, tuple[str, str, int]] = field(default_factory=dict)


def device_ref(site: str, device: str) -> str:
    return f"{site}/{device}"
