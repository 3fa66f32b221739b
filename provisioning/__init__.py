"""Provisioning: flash boards over MicroPython's raw REPL, install MicroPython,
per-device MQTT credentials, the Mosquitto password/ACL files and the site's TLS
CA and broker certificate (:mod:`provisioning.tls`, incl. ``cert_expiry_check``).

Public entry points: :func:`provisioning.flash.flash`, :func:`provisioning.sync.sync`,
:class:`provisioning.rawrepl.RawRepl`, and the CLI modules ``cli`` (``livinglab
device ...``) and ``broker_cli`` (``livinglab broker sync``).
"""

from __future__ import annotations

__all__ = ["broker_cli", "cli", "errors", "flash", "rawrepl", "settings", "sync", "tls"]
