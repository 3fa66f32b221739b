"""The city's devices on the wire: one asyncio loop, one paho client per device.

paho's sockets are driven by the event loop (``add_reader``/``add_writer``), not
by a thread per client, so a few thousand devices fit in one process. Each device
connects like the firmware (clean session, client id = device id, the last will
``{"state":"offline"}`` retained on its status topic), publishes its retained
status at connect and every 60 s, and telemetry at QoS 1 every interval.

:meth:`CityLoad.drop` ends every connection the way a powered-off board does: the
socket closes without an MQTT DISCONNECT, so each broker publishes the will (what
the firmware's process end does too, firmware/ll/app.py ``main``).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from .city_model import (
    OFFLINE,
    STATUS_EVERY_S,
    SimDevice,
    Walk,
    status_payload,
    telemetry_payload,
)

__all__ = ["CityLoad", "SiteTally"]

RECONNECT_MIN_S = 1.0
RECONNECT_MAX_S = 30.0  # the firmware's backoff bounds (ll/link.py)


@dataclass
class SiteTally:
    """What one site's devices did: telemetry messages sent and acked by the broker."""

    devices: int = 0
    sent: int = 0
    acked: int = 0
    statuses: int = 0
    connects: int = 0


class _Device:
    """One device: its paho client driven by the loop, its walk, its counters."""

    def __init__(self, dev: SimDevice, host: str, port: int, prefix: str, interval_s: int,
                 tally: SiteTally, loop: asyncio.AbstractEventLoop) -> None:
        self.dev = dev
        self.host, self.port = host, port
        self.interval_s = interval_s
        self.tally = tally
        self.loop = loop
        base = f"{prefix}/{dev.site}/{dev.device}/"
        self.t_telemetry, self.t_status = base + "telemetry", base + "status"
        self.walk = Walk(dev.seed)
        self.rng = random.Random(dev.seed ^ 0x5A5A)
        self.seq = 0
        self.booted = time.monotonic()
        self.pending: set[int] = set()
        self.stopping = False
        self.backoff = RECONNECT_MIN_S
        c = paho.Client(CallbackAPIVersion.VERSION2, client_id=dev.device, clean_session=True,
                        protocol=paho.MQTTv311)
        c.will_set(self.t_status, OFFLINE, qos=1, retain=True)
        c.max_inflight_messages_set(20)
        c.max_queued_messages_set(0)
        c.on_socket_open = self._open
        c.on_socket_close = self._close
        c.on_socket_register_write = lambda _c, _u, s: loop.add_writer(s, c.loop_write)
        c.on_socket_unregister_write = self._unregister_write
        c.on_connect = self._connected
        c.on_disconnect = self._disconnected
        c.on_publish = self._published
        self.client = c

    # -- the socket, driven by the loop ------------------------------------------------
    def _open(self, c: paho.Client, _u: Any, sock: Any) -> None:
        self.loop.add_reader(sock, c.loop_read)

    def _close(self, _c: paho.Client, _u: Any, sock: Any) -> None:
        self.loop.remove_reader(sock)
        self.loop.remove_writer(sock)

    def _unregister_write(self, _c: paho.Client, _u: Any, sock: Any) -> None:
        self.loop.remove_writer(sock)

    def connect(self) -> None:
        try:
            self.client.connect(self.host, self.port, keepalive=30)
        except OSError:
            self._retry()

    def _retry(self) -> None:
        if self.stopping:
            return
        delay = self.backoff * (0.75 + self.rng.random() / 2)
        self.backoff = min(RECONNECT_MAX_S, self.backoff * 2)
        self.loop.call_later(delay, self._reconnect)

    def _reconnect(self) -> None:
        if self.stopping:
            return
        try:
            self.client.reconnect()
        except OSError:
            self._retry()

    # -- MQTT events --------------------------------------------------------------------
    def _connected(self, _c: paho.Client, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
        if rc.is_failure:
            return
        self.backoff = RECONNECT_MIN_S
        self.tally.connects += 1
        self.publish_status()

    def _disconnected(self, _c: paho.Client, _u: Any, _f: Any, _rc: Any, _p: Any) -> None:
        self._retry()

    def _published(self, _c: paho.Client, _u: Any, mid: int, _rc: Any, _p: Any) -> None:
        if mid in self.pending:
            self.pending.discard(mid)
            self.tally.acked += 1

    # -- what the device sends ----------------------------------------------------------
    def publish_status(self) -> None:
        up = time.monotonic() - self.booted
        body = status_payload(self.dev, up, self.interval_s, -55 - self.rng.randint(0, 25),
                              92_000 - self.rng.randint(0, 3000))
        self.client.publish(self.t_status, body, qos=1, retain=True)
        self.tally.statuses += 1

    def publish_telemetry(self, dt: float) -> None:
        body = telemetry_payload(self.dev, self.seq, time.time(), self.walk, dt)
        self.seq = (self.seq + 1) % 2147483647
        info = self.client.publish(self.t_telemetry, body, qos=1)
        self.pending.add(info.mid)
        self.tally.sent += 1

    async def run(self, stop: asyncio.Event) -> None:
        """Sample every interval from a random phase (devices never boot in step)."""
        await _wait(stop, self.rng.uniform(0, self.interval_s))
        next_t = time.monotonic()
        next_status = next_t + STATUS_EVERY_S
        while not stop.is_set():
            self.publish_telemetry(self.interval_s)
            if time.monotonic() >= next_status:
                next_status += STATUS_EVERY_S
                if self.client.is_connected():
                    self.publish_status()
            next_t += self.interval_s
            await _wait(stop, next_t - time.monotonic())

    def drop(self) -> None:
        """Close the socket without DISCONNECT: the broker publishes the last will."""
        self.stopping = True
        sock: Any = self.client.socket()
        if sock is None:
            return
        with contextlib.suppress(OSError, ValueError):
            self.loop.remove_reader(sock)
            self.loop.remove_writer(sock)
            sock.shutdown(socket.SHUT_RDWR)
            sock.close()


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    if seconds > 0:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), seconds)


class CityLoad:
    """Every device of every site, on one event loop."""

    def __init__(self, brokers: dict[str, tuple[str, int]], devices: Sequence[SimDevice],
                 interval_s: int, prefix: str = "livinglab/v1") -> None:
        self.tallies = {site: SiteTally() for site in brokers}
        self._specs = list(devices)
        self._brokers = brokers
        self._interval_s = interval_s
        self._prefix = prefix
        self._devices: list[_Device] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._misc: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        for spec in self._specs:
            host, port = self._brokers[spec.site]
            tally = self.tallies[spec.site]
            tally.devices += 1
            d = _Device(spec, host, port, self._prefix, self._interval_s, tally, loop)
            self._devices.append(d)
            d.connect()
            await asyncio.sleep(0)  # let CONNACKs in between connects
        self._misc = asyncio.create_task(self._housekeeping())
        self._tasks = [asyncio.create_task(d.run(self._stop)) for d in self._devices]

    async def _housekeeping(self) -> None:
        """paho's keepalive pings and timeouts (what its own loop thread would do)."""
        while True:
            for d in self._devices:
                if not d.stopping:
                    d.client.loop_misc()
            await asyncio.sleep(1.0)

    async def drop(self, drain_s: float = 5.0) -> None:
        """Stop sampling, wait (bounded) for the broker to ack what was sent, then power
        every device off (wills fire)."""
        self._stop.set()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        end = time.monotonic() + drain_s
        while any(d.pending for d in self._devices) and time.monotonic() < end:
            await asyncio.sleep(0.05)
        if self._misc is not None:
            self._misc.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._misc
        for d in self._devices:
            d.drop()
