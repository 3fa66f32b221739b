"""systemd's notify protocol, without a native dependency: one datagram per message.

When systemd starts a ``Type=notify`` service it sets ``NOTIFY_SOCKET`` (a path,
or ``@name`` for Linux's abstract namespace) and, with ``WatchdogSec=``,
``WATCHDOG_USEC`` (and ``WATCHDOG_PID``). A message is newline-separated
``KEY=VALUE`` lines sent as one ``AF_UNIX``/``SOCK_DGRAM`` datagram
(sd_notify(3)). Without ``NOTIFY_SOCKET`` every call is a no-op, so the
gateway behaves the same in a terminal, under Docker or in tests.

What the gateway sends (docs/pi.md, interfaces.md "Service hooks"):

- ``READY=1`` once subscribed to the broker;
- ``WATCHDOG=1`` from a task on the event loop, every ``WATCHDOG_USEC/4``
  (the contract asks for at least every ``/2``): a hung loop sends nothing,
  and systemd kills and restarts the process. Until ``READY`` each ping also
  extends systemd's start timeout (``EXTEND_TIMEOUT_USEC``), so a gateway
  that waits at boot for a broker that is not up yet is not killed for being
  slow, while a gateway whose loop hangs at start is;
- ``STATUS=<one line>`` whenever the line changes (see :func:`describe`);
- ``STOPPING=1`` when shutdown begins.

A failed send is logged once and otherwise ignored: the notify socket is a
courtesy to the supervisor, never a reason to stop ingesting.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Mapping
from typing import Any

__all__ = ["Notifier", "describe"]

log = logging.getLogger("livinglab.gateway.sdnotify")


def _address(value: str) -> str | bytes | None:
    """``NOTIFY_SOCKET`` as a ``sendto`` address; ``@name`` is the abstract namespace."""
    if value.startswith("@"):
        return b"\0" + value[1:].encode()
    if value.startswith("/"):
        return value
    return None  # vsock: addresses and anything else: not for a Pi gateway


class Notifier:
    """Sends sd_notify messages if the service manager asked for them."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        self._addr = _address(env.get("NOTIFY_SOCKET", ""))
        self.watchdog_s: float | None = None
        usec, pid = env.get("WATCHDOG_USEC", ""), env.get("WATCHDOG_PID", "")
        if usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid())):
            self.watchdog_s = int(usec) / 1e6
        self._sock: socket.socket | None = None
        self._status = ""
        self._ready = False
        self._warned = False
        self.sent = 0

    @property
    def enabled(self) -> bool:
        return self._addr is not None

    def send(self, *lines: str) -> bool:
        """One datagram of ``KEY=VALUE`` lines; False if not sent."""
        if self._addr is None:
            return False
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                self._sock.setblocking(False)
            self._sock.sendto("\n".join(lines).encode(), self._addr)
        except OSError as exc:  # socket gone or queue full: the next message tries again
            if not self._warned:
                log.warning("cannot notify the service manager at %s: %s", self._addr, exc)
                self._warned = True
            return False
        self.sent += 1
        return True

    def ready(self, status: str = "") -> None:
        if not self._ready:
            self._ready = True
            self._status = status or self._status
            self.send("READY=1", *([f"STATUS={self._status}"] if self._status else []))

    def status(self, line: str) -> None:
        """``STATUS=`` only when the line changed (it is shown by ``systemctl status``)."""
        line = " ".join(line.split())
        if line != self._status:
            self._status = line
            self.send(f"STATUS={line}")

    def stopping(self) -> None:
        self.send("STOPPING=1", "STATUS=stopping")

    async def watchdog(self) -> None:
        """Ping from the event loop until cancelled; returns at once without a watchdog."""
        if self._addr is None or self.watchdog_s is None:
            return
        interval = self.watchdog_s / 4
        while True:
            if self._ready:
                self.send("WATCHDOG=1")
            else:  # keep the start timeout ahead of us while the loop is alive
                self.send("WATCHDOG=1", f"EXTEND_TIMEOUT_USEC={int(self.watchdog_s * 1e6)}")
            await asyncio.sleep(interval)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def describe(health: Mapping[str, Any]) -> str:
    """The gateway's state as one short line, from its ``/healthz`` document."""
    parts = ["broker connected" if health.get("mqtt_connected") else "broker DISCONNECTED"]
    depth = int(health.get("buffer_depth", 0))
    parts.append(f"buffer {depth} points" + (
        f" (oldest {float(health.get('oldest_age_s', 0.0)):.0f} s)" if depth else ""))
    down = float(health.get("store_down_s", 0.0))
    parts.append(f"store DOWN for {down:.0f} s" if down else "store ok")
    if health.get("disk_full"):
        parts.append("DISK FULL: not acknowledging")
    elif health.get("buffer_full"):
        parts.append("BUFFER FULL: not acknowledging")
    return "; ".join(parts)
