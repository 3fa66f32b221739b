"""Fresh liveness: the console's own subscription to the site's retained status topics.

The gateway's last-seen file is flushed every few seconds; a retained ``offline``
(a device's last will, or the gateway's) reaches the console the moment the
broker publishes it. Read-only: the console subscribes and never publishes.
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
import time
from dataclasses import dataclass, field
from typing import Any

import aiomqtt

from protocols.config import Config, MqttSection
from protocols.ids import is_id
from protocols.jsonstrict import JsonError, loads_strict
from protocols.mqtt_tls import client_tls

log = logging.getLogger("livinglab.console.live")

__all__ = ["LiveStatus", "Status"]


@dataclass(frozen=True, slots=True)
class Status:
    state: str
    fields: dict[str, Any]
    at: float  # when the console received the last online status (it carries no time)


@dataclass
class LiveStatus:
    """Latest retained status per device and per gateway; ``changed`` wakes SSE streams."""

    cfg: Config
    devices: dict[str, Status] = field(default_factory=dict)
    gateways: dict[str, Status] = field(default_factory=dict)
    connected: bool = False
    error: str = ""
    # retained or live statuses skipped: not strict JSON (NaN, a lone surrogate, deep
    # nesting, not UTF-8); counted, never fatal to the subscription
    skipped: int = 0
    version: int = 0
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    @property
    def prefix(self) -> str:
        return f"{self.cfg.mqtt.topic_prefix}/{self.cfg.site}/"

    def observe(self, topic: str, payload: bytes) -> bool:
        """One status message in; True if it changed what the console shows."""
        if not topic.startswith(self.prefix) or not topic.endswith("/status"):
            return False
        levels = topic[len(self.prefix):].split("/")
        try:
            doc = loads_strict(payload) if payload else {"state": "offline"}
        except JsonError:
            self.skipped += 1
            return False
        if not isinstance(doc, dict) or doc.get("state") not in ("online", "offline"):
            return False
        if len(levels) == 2:
            table, key = self.devices, levels[0]
        elif len(levels) == 4 and levels[0] == "_gateway":
            table, key = self.gateways, levels[1]
        else:
            return False
        if not is_id(key):  # not a device of the contract (the gateway rejects it too)
            return False
        now, before = time.time(), table.get(key)
        if doc["state"] == "offline" and before is not None:
            # a last will says only "offline": keep what the device said when online
            table[key] = Status("offline", {**before.fields, **doc}, before.at)
        else:
            table[key] = Status(str(doc["state"]), doc, now)
        return True

    async def _bump(self) -> None:
        async with self.changed:
            self.version += 1
            self.changed.notify_all()

    async def run(self) -> None:
        """Subscribe until cancelled; reconnect with a bounded backoff."""
        m, c = self.cfg.mqtt, self.cfg.console
        version = aiomqtt.ProtocolVersion.V5 if m.protocol == "5" else aiomqtt.ProtocolVersion.V311
        tls = client_tls(self.cfg)  # the one setup every MQTT client uses (tls = true too)
        username = c.mqtt_username or m.username or None
        password = c.mqtt_password if c.mqtt_username else (m.password or None)
        try:
            await self._subscribe(m, version, tls, username, password)
        finally:  # whatever ends the subscription, the page must not say "connected"
            self.connected = False
            self.error = self.error or "live subscription stopped"

    async def _subscribe(self, m: MqttSection, version: aiomqtt.ProtocolVersion,
                         tls: ssl.SSLContext | None, username: str | None,
                         password: str | None) -> None:
        delay = 0.5
        while True:
            try:
                async with aiomqtt.Client(m.host, m.port, username=username,
                                          password=password or None, protocol=version,
                                          identifier=f"livinglab-console-{os.getpid()}",
                                          tls_context=tls, keepalive=30, timeout=10) as client:
                    await client.subscribe(f"{self.prefix}+/status", qos=1)
                    await client.subscribe(f"{self.prefix}_gateway/+/status", qos=1)
                    self.connected, self.error, delay = True, "", 0.5
                    await self._bump()
                    async for msg in client.messages:
                        data = msg.payload if isinstance(msg.payload, bytes) else b""
                        if self.observe(msg.topic.value, data):
                            await self._bump()
            except aiomqtt.MqttError as exc:
                self.connected, self.error = False, str(exc)
                await self._bump()
                log.info("console lost the broker (%s); retrying in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
