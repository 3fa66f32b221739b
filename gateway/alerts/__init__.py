"""Alerts: rules only we can evaluate well, sent to Prometheus Alertmanager.

``livinglab alerts`` reads the shared store through the centre reader
(:mod:`gateway.stores.centre`), evaluates the built-in rules (:mod:`.rules`) and
the configured thresholds (:mod:`.thresholds`) into firing alerts, keeps what it
sent in a state file (:mod:`.state`) and posts to Alertmanager's API v2
(:mod:`.client`). Grouping, routing, silences and receivers are Alertmanager's.
:func:`firing_alerts` reads back what fires for the console. Sites that run
Prometheus over each gateway's ``/metrics`` get ``prometheus-rules.yml``.
"""

from .errors import AlertmanagerUnreachable, AlertsError, StateFileError
from .firing import firing_alerts
from .model import Alert
from .rules import RULES, evaluate

__all__ = ["RULES", "Alert", "AlertmanagerUnreachable", "AlertsError", "StateFileError",
           "evaluate", "firing_alerts"]
