"""Watch a site's MQTT traffic the way a technician would: who talks, how often, what.

:class:`Tally` is pure bookkeeping over (topic, payload) pairs, so it is tested
without a broker; :func:`watch` is the thin aiomqtt shell that feeds it. The
watcher is an observer only (QoS 0, clean session): it never takes messages
away from the gateway.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiomqtt

from protocols.jsonstrict import JsonError, loads_strict

from .fleet_plan import BrokerTarget

log = logging.getLogger(__name__)


def free_port(host: str = "127.0.0.1") -> int:
    """A free TCP port on ``host`` (the usual bind-to-0 trick; racy but fine for a demo)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def port_open(host: str, port: int) -> bool:
    """True when something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


@dataclass
class DeviceSeen:
    """What has been seen of one device on the broker."""

    device: str
    messages: int = 0
    boot: int | None = None
    seq: int | None = None
    seq_gaps: int = 0  # messages missing inside one boot (seq jumped forward)
    boots: int = 0
    values: dict[str, float] = field(default_factory=dict)
    last_seen: float | None = None  # wall clock (time.time()) of the last telemetry
    state: str = ""  # last status: online / offline

    @property
    def kind(self) -> str:
        return self.device.rsplit("-", 1)[0]


@dataclass
class Tally:
    """Per-device counts and last values from telemetry, status and rejected topics."""

    prefix: str
    site: str
    devices: dict[str, DeviceSeen] = field(default_factory=dict)
    rejected: int = 0
    malformed: int = 0
    gateways: dict[str, dict[str, Any]] = field(default_factory=dict)  # last status per gateway
    # Called with (device, status payload) when a device's online/offline state changes.
    on_state: Callable[[str, dict[str, Any]], None] | None = None

    @property
    def subscription(self) -> str:
        return f"{self.prefix}/{self.site}/#"

    def device(self, device: str) -> DeviceSeen:
        seen = self.devices.get(device)
        if seen is None:
            seen = self.devices[device] = DeviceSeen(device)
        return seen

    def observe(self, topic: str, payload: bytes, now: float | None = None,
                retained: bool = False) -> None:
        """Account one message; anything unexpected is counted, never raised.

        A retained status is old news (it may be from an earlier run): it sets the
        state but is not reported as a change.
        """
        base = f"{self.prefix}/{self.site}/"
        if not topic.startswith(base):
            return
        levels = topic[len(base):].split("/")
        if len(levels) == 3 and levels[0] == "_gateway":
            if levels[2] == "rejected":
                self.rejected += 1
            elif levels[2] == "status":
                try:
                    doc = loads_strict(payload) if payload else None
                except JsonError:
                    self.malformed += 1
                    return
                if isinstance(doc, dict):
                    self.gateways[levels[1]] = doc
            return
        if len(levels) != 2 or levels[0].startswith("_"):
            return
        device, leaf = levels
        try:  # the strict reader: NaN, lone surrogates, deep nesting are counted, not fatal
            body: Any = loads_strict(payload) if payload else None
        except JsonError:
            self.malformed += 1
            return
        if leaf == "status" and isinstance(body, dict):
            seen = self.device(device)
            state = str(body.get("state", ""))
            changed = state != seen.state
            seen.state = state
            if changed and not retained and self.on_state is not None:
                self.on_state(device, body)
        elif leaf == "telemetry" and isinstance(body, dict):
            self._telemetry(self.device(device), body, time.time() if now is None else now)

    def _telemetry(self, seen: DeviceSeen, body: dict[str, Any], now: float) -> None:
        seen.messages += 1
        seen.last_seen = now
        boot, seq = body.get("boot"), body.get("seq")
        if isinstance(boot, int) and isinstance(seq, int):
            if boot != seen.boot:
                seen.boots += 1
            elif seen.seq is not None and seq > seen.seq + 1:
                seen.seq_gaps += seq - seen.seq - 1
            seen.boot, seen.seq = boot, seq
        for sample in body.get("samples") or ():
            values = sample.get("values") if isinstance(sample, dict) else None
            if isinstance(values, dict):
                for name, value in values.items():
                    if isinstance(value, int | float) and not isinstance(value, bool):
                        seen.values[str(name)] = float(value)

    def total(self) -> int:
        return sum(d.messages for d in self.devices.values())


async def watch(broker: BrokerTarget, tally: Tally, *, protocol: str = "3.1.1",
                client_id: str = "", ready: asyncio.Event | None = None) -> None:
    """Feed ``tally`` from the broker until cancelled; reconnect with a bounded backoff.

    ``ready`` is set once subscribed, so a caller can start devices after it and see
    their first (non-retained) status.
    """
    version = (aiomqtt.ProtocolVersion.V5 if protocol == "5"
               else aiomqtt.ProtocolVersion.V311)
    delay = 0.5
    while True:
        try:
            async with aiomqtt.Client(broker.host, broker.port,
                                      username=broker.username or None,
                                      password=broker.password or None,
                                      identifier=client_id or None, protocol=version,
                                      keepalive=30, timeout=10,
                                      tls_context=broker.tls_context()) as client:
                await client.subscribe(tally.subscription, qos=0)
                if ready is not None:
                    ready.set()
                delay = 0.5
                async for message in client.messages:
                    payload = message.payload
                    data = (payload if isinstance(payload, bytes)
                            else str(payload).encode() if payload is not None else b"")
                    tally.observe(message.topic.value, data, retained=bool(message.retain))
        except aiomqtt.MqttError as exc:
            log.info("monitor lost the broker (%s); retrying in %.1f s", exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)


async def cancel(task: asyncio.Task[Any] | None) -> None:
    """Cancel a background task and wait for it, bounded (used in ``finally``)."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, asyncio.TimeoutError):
        await asyncio.wait_for(task, 5)
