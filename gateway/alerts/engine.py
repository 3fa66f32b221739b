"""One evaluation cycle, start to end: read, evaluate, advance the state, send.

Shared by ``--once`` and the service loop. Blocking (the reader and the HTTP
client are); the service runs :meth:`Engine.read_and_evaluate` and
:meth:`Engine.send` in threads.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from protocols.config import AlertsSection

from ..stores.centre import CentreReader
from ..stores.states import DeviceState
from .client import post_alerts
from .errors import AlertmanagerUnreachable
from .model import Alert
from .rules import evaluate
from .snapshot import Collector
from .state import AlertState, advance, delivered, payloads

__all__ = ["CycleResult", "Engine"]

log = logging.getLogger("livinglab.alerts")


@dataclass(frozen=True)
class CycleResult:
    firing: tuple[Alert, ...]
    state: AlertState
    #: None: nothing to send to (no URL); else whether Alertmanager took it all
    sent: bool | None
    queries: int


class Engine:
    """Holds the reader, the config and the state between cycles."""

    def __init__(self, reader: CentreReader, cfg: AlertsSection, state: AlertState,
                 sites: tuple[str, ...] = ()) -> None:
        self.cfg = cfg
        self.reader = reader
        self.collector = Collector(reader, cfg, sites)
        self.state = state
        self.send_failures = 0
        #: the derived states of the last cycle ((site, device) -> state)
        self.last_states: Mapping[tuple[str, str], DeviceState] = {}

    def read_and_evaluate(self, now_ms: int) -> tuple[tuple[Alert, ...], AlertState]:
        """Read one snapshot and return what fires and the state it leads to (not kept:
        :meth:`commit` keeps it)."""
        snap = self.collector.collect(now_ms, self.state.memory.update_first)
        ev = evaluate(snap, self.cfg, self.state.memory, self.state.active_keys)
        self.last_states = ev.states
        return ev.alerts, advance(self.state, ev.alerts, ev.memory, now_ms)

    def send(self, state: AlertState, now_ms: int) -> tuple[AlertState, bool]:
        """POST everything active and resolved; the outbox empties only if it was taken."""
        body = payloads(state, now_ms, self.cfg.interval_s)
        if not body:
            return state, True
        try:
            post_alerts(self.cfg.alertmanager_url, body)
        except AlertmanagerUnreachable as exc:
            self.send_failures += 1
            log.warning("%s; %d resolved and %d firing alerts kept for the next cycle",
                        exc, len(state.outbox), len(state.active))
            return state, False
        return delivered(state), True

    def cycle(self, now_ms: int) -> CycleResult:
        """Read, evaluate, send when a URL is set; keeps the new state in memory."""
        before = self.reader.queries()
        firing, state = self.read_and_evaluate(now_ms)
        sent: bool | None = None
        if self.cfg.alertmanager_url:
            state, sent = self.send(state, now_ms)
        self.state = state
        return CycleResult(firing, state, sent, self.reader.queries() - before)
