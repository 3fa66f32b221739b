"""paho's receive and ack path, made cheap enough for a backlog of thousands of messages a second.

Measured (issue 21, ``docs/benchmarks.md``): paho's own read path was about a third
of the gateway's CPU while draining a backlog. Per PUBLISH it made three or four
``recv()`` calls (the fixed header byte, each byte of the remaining length, then the
body), built an MQTT v5 ``Properties`` object the gateway never reads, an
``MQTTMessage``, ran the topic matcher of ``message_callback_add`` (unused here), and
answered one event-loop wake-up per packet. Each PUBACK was a queued packet and a
``send()`` of 4 bytes.

:class:`FastClient` keeps paho for everything that is not the hot path (CONNECT and
its CONNACK, SUBSCRIBE, keepalive, our own publishes and their PUBACKs, DISCONNECT,
QoS 2) and replaces only two things:

* ``loop_read``: one ``recv()`` of up to 256 KiB per wake-up, then every complete
  packet in it is parsed in one loop. A QoS 0/1 PUBLISH goes straight to
  ``on_publish_fast(topic, payload, qos, mid, retain)`` (properties skipped, the
  topic decoded with ``errors="replace"`` so a bad one becomes a ``bad_topic``
  rejection instead of an exception); any other packet is handed to paho's own
  ``_packet_handle`` exactly as paho's reader would have assembled it. An
  incomplete tail waits in the buffer for the next wake-up.
* :meth:`ack_many`: the PUBACKs of one committed batch as one queued write (the
  same 4 bytes each, ``!BBH`` 0x40 2 mid, as paho's ``_send_puback``).

Semantics are unchanged: an ack is still sent only after the commit, and only for the
connection the message came on (the caller checks the generation). Private paho
members used: ``_sock``, ``_sock_recv``, ``_in_packet``, ``_packet_handle``,
``_loop_rc_handle``, ``_packet_queue``, ``_msgtime_mutex``, ``_last_bytes_received``,
``_protocol``; ``tests/gateway/test_fastread.py`` checks them against the installed
paho so an upgrade that moves them fails a test, not a site.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.client import MQTT_ERR_CONN_LOST, MQTT_ERR_PROTOCOL, MQTT_ERR_SUCCESS, MQTTv5
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.exception import MalformedPacket

__all__ = ["FastClient", "PublishCallback", "parse_publish"]

_CHUNK = 256 * 1024
_PUBLISH = 0x30
_PUBACK = 0x40
_PUBACK_PACK = struct.Struct("!BBH").pack

#: (topic, payload, qos, mid, retain)
PublishCallback = Callable[[str, bytes, int, int, bool], None]


class MalformedPublish(ValueError):
    """A PUBLISH whose lengths do not add up: a protocol error, the connection is dropped."""


def parse_publish(header: int, buf: bytes | bytearray, start: int, end: int,
                  v5: bool) -> tuple[str, bytes, int, int, bool]:
    """Pure: (topic, payload, qos, mid, retain) of the PUBLISH body ``buf[start:end]``.

    Properties (v5) are skipped, not decoded: the gateway reads none of them."""
    qos = (header >> 1) & 3
    if end - start < 2:
        raise MalformedPublish("short PUBLISH")
    tlen = (buf[start] << 8) | buf[start + 1]
    j = start + 2 + tlen
    topic = bytes(buf[start + 2:j]).decode("utf-8", "replace")
    mid = 0
    if qos:
        if j + 2 > end:
            raise MalformedPublish("PUBLISH without a packet id")
        mid = (buf[j] << 8) | buf[j + 1]
        j += 2
    if v5:
        plen, mult = 0, 1
        while True:
            if j >= end or mult > 128 ** 3:
                raise MalformedPublish("bad PUBLISH properties length")
            b = buf[j]
            j += 1
            plen += (b & 127) * mult
            mult *= 128
            if b < 128:
                break
        j += plen
    if j > end:
        raise MalformedPublish("PUBLISH lengths exceed the packet")
    return topic, bytes(buf[j:end]), qos, mid, bool(header & 1)


class FastClient(paho.Client):
    """paho's ``Client`` with a batched reader and batched PUBACKs (see module doc)."""

    def __init__(self, *args: Any, on_publish_fast: PublishCallback, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.on_publish_fast = on_publish_fast
        self._rbuf = bytearray()
        #: packets read by the fast path / handed to paho (tests, profiles)
        self.fast_packets = 0
        self.slow_packets = 0

    def reconnect(self) -> MQTTErrorCode:
        self._rbuf = bytearray()  # bytes of an old connection never reach a new one
        return super().reconnect()

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        """One ``recv`` and every complete packet in the buffer (``max_packets`` is
        ignored: the buffer bounds the work per call)."""
        if self._sock is None:
            return MQTTErrorCode.MQTT_ERR_NO_CONN
        try:
            data = self._sock_recv(_CHUNK)
        except BlockingIOError:
            return MQTT_ERR_SUCCESS
        except OSError:
            return self._loop_rc_handle(MQTT_ERR_CONN_LOST)
        if not data:
            return self._loop_rc_handle(MQTT_ERR_CONN_LOST)
        pending = getattr(self._sock, "pending", None)  # TLS: bytes already decrypted
        while pending is not None and pending() > 0:  # would never wake the selector
            try:
                data += self._sock_recv(_CHUNK)
            except BlockingIOError:
                break
            except OSError:
                return self._loop_rc_handle(MQTT_ERR_CONN_LOST)
        with self._msgtime_mutex:
            self._last_bytes_received = paho.time_func()
        buf = self._rbuf
        buf += data
        rc = self._parse(buf)
        if rc:
            return self._loop_rc_handle(rc)
        return MQTT_ERR_SUCCESS

    def _parse(self, buf: bytearray) -> MQTTErrorCode:
        v5 = self._protocol == MQTTv5
        deliver = self.on_publish_fast
        n, pos, fast = len(buf), 0, 0
        try:
            while n - pos >= 2:
                header = buf[pos]
                length, mult, i = 0, 1, pos + 1
                while True:
                    if i >= n:
                        return MQTT_ERR_SUCCESS  # the rest of the length comes later
                    b = buf[i]
                    i += 1
                    length += (b & 127) * mult
                    if b < 128:
                        break
                    mult *= 128
                    if i - pos > 4:
                        return MQTT_ERR_PROTOCOL
                end = i + length
                if end > n:
                    break  # an incomplete packet: its tail comes with the next recv
                if header & 0xF0 == _PUBLISH and header & 0x06 != 0x04:
                    try:
                        topic, payload, qos, mid, retain = parse_publish(header, buf, i, end, v5)
                    except MalformedPublish:
                        return MQTT_ERR_PROTOCOL
                    pos = end
                    fast += 1
                    deliver(topic, payload, qos, mid, retain)
                    continue
                pos = end
                rc = self._handle_slow(header, buf, i, end)
                if rc or self._sock is None or self._rbuf is not buf:
                    return rc  # the connection went (or was replaced) in a callback
        finally:
            self.fast_packets += fast
            if self._rbuf is buf and pos:
                del buf[:pos]
        return MQTT_ERR_SUCCESS

    def _handle_slow(self, header: int, buf: bytearray, start: int, end: int) -> MQTTErrorCode:
        """Any packet but a QoS 0/1 PUBLISH: paho handles it as its reader would."""
        self.slow_packets += 1
        self._in_packet = {
            "command": header, "have_remaining": 1, "remaining_count": [],
            "remaining_mult": 1, "remaining_length": end - start,
            "packet": bytearray(buf[start:end]), "to_process": 0, "pos": 0,
        }
        try:
            rc = self._packet_handle()
        except MalformedPacket:
            rc = MQTT_ERR_PROTOCOL
        self._in_packet = {
            "command": 0, "have_remaining": 0, "remaining_count": [], "remaining_mult": 1,
            "remaining_length": 0, "packet": bytearray(b""), "to_process": 0, "pos": 0,
        }
        return rc

    def ack_many(self, mids: Sequence[int]) -> MQTTErrorCode:
        """PUBACK every QoS 1 ``mid`` in one queued write (one ``send()``)."""
        if not mids or self._sock is None:
            return MQTT_ERR_SUCCESS
        packet = b"".join([_PUBACK_PACK(_PUBACK, 2, m) for m in mids])
        return self._packet_queue(_PUBACK, packet, 0, 0)
