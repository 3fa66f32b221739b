"""Serial ingress: USB boards without Wi-Fi print one message per line.

Line format: ``<device>/<kind> <payload-json>`` with kind ``telemetry`` or
``status``, e.g. ``air-0001/telemetry {"v":1,...}``. The topic is built with the
gateway's own site and the message goes through the same pipeline as MQTT.
Every other line (REPL banner, tracebacks, logs) is ignored and counted.

Which ids a port may speak for: ``[gateway.serial_ids]`` maps a port to its
device ids, and the pipeline rejects (``port_not_allowed``) a line for any other
id, so a board plugged into the gateway cannot write as another device. A port
without a mapping may speak for any id (``livinglab doctor`` warns about it);
``serial_ports`` alone still says which ports are read. Messages carry their
``port`` for that check.

Serial has no acknowledgement: what a board prints while the gateway is down
(or before the port is opened) is lost. Boards that must not lose data need MQTT.

pyserial is blocking, so each port gets a reader thread; lines are handed to the
event loop with ``call_soon_threadsafe`` and the pipeline sees them as QoS 0
messages (nothing to ack).
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
from collections.abc import Callable

import serial

from gateway.ingest.message import Message

log = logging.getLogger("livinglab.gateway.serial")

_LINE = re.compile(rb"^([^\s/]{1,64})/(telemetry|status) (\{.*\})\s*$")
MAX_LINE = 16384 + 128


def parse_serial_line(line: bytes, site: str, prefix: str) -> tuple[str, bytes] | None:
    """Pure: ``(topic, payload)`` for a message line, None for anything else."""
    m = _LINE.match(line.strip(b"\r\n\x00"))
    if m is None:
        return None
    device = m.group(1).decode("ascii", "replace")
    return f"{prefix}/{site}/{device}/{m.group(2).decode()}", m.group(3)


class SerialSource:
    """One reader thread per port, until :meth:`stop`."""

    def __init__(self, ports: tuple[str, ...], baud: int, site: str, prefix: str,
                 deliver: Callable[[Message], None],
                 on_noise: Callable[[], None] = lambda: None) -> None:
        self._ports = ports
        self._baud = baud
        self._site, self._prefix = site, prefix
        self._deliver = deliver
        self._on_noise = on_noise
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.lines = 0
        self.noise = 0
        #: ports currently open (pyserial flushes input on open: earlier lines are gone)
        self.open_ports = 0

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        for port in self._ports:
            t = threading.Thread(target=self._read_port, args=(port, loop),
                                 name=f"serial:{port}", daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self, timeout_s: float = 2.0) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout_s)

    def _read_port(self, port: str, loop: asyncio.AbstractEventLoop) -> None:
        """Open (and reopen after unplugging) ``port``; feed each line to the loop."""
        logged = False
        while not self._stop.is_set():
            try:
                with serial.Serial(port, self._baud, timeout=0.2) as ser:
                    log.info("serial %s open at %d baud", port, self._baud)
                    logged = False
                    self.open_ports += 1
                    try:
                        self._read_lines(ser, port, loop)
                    finally:
                        self.open_ports -= 1
            except (serial.SerialException, OSError) as exc:
                if not logged:
                    log.warning("serial %s: %s; retrying every 2 s", port, exc)
                    logged = True
                self._stop.wait(2.0)

    def _read_lines(self, ser: serial.Serial, port: str,
                    loop: asyncio.AbstractEventLoop) -> None:
        buf = b""
        while not self._stop.is_set():
            chunk: bytes = ser.readline(MAX_LINE)
            if not chunk:
                continue
            buf += chunk
            if not buf.endswith(b"\n") and len(buf) < MAX_LINE:
                continue  # timeout mid-line: keep the part and read on
            line, buf = buf, b""
            self.lines += 1
            parsed = parse_serial_line(line, self._site, self._prefix)
            if parsed is None:
                self.noise += 1
                loop.call_soon_threadsafe(self._on_noise)
                continue
            topic, payload = parsed
            msg = Message(topic=topic, payload=payload, received_at=time.time(), port=port)
            loop.call_soon_threadsafe(self._deliver, msg)
