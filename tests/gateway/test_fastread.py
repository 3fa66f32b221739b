"""The batched MQTT reader (gateway.ingest.fastread) against paho's own decoder, fed byte by
byte, in awkward chunks and with non-PUBLISH packets in between."""

from __future__ import annotations

import struct

import paho.mqtt.client as paho
import pytest
from paho.mqtt import _packet
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from gateway.ingest.fastread import FastClient, MalformedPublish, parse_publish


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n % 128, n // 128
        out.append(b | (128 if n else 0))
        if not n:
            return bytes(out)


def publish(topic: str, payload: bytes, qos: int, mid: int, v5: bool, retain: bool = False,
            props: bytes = b"") -> bytes:
    t = topic.encode()
    body = struct.pack("!H", len(t)) + t + (struct.pack("!H", mid) if qos else b"")
    if v5:
        body += props or b"\x00"  # packed properties carry their own length
    body += payload
    return bytes([0x30 | (qos << 1) | int(retain)]) + _varint(len(body)) + body


class FakeSock:
    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks
        self.sent = bytearray()

    def recv(self, n: int) -> bytes:
        if not self.chunks:
            raise BlockingIOError
        c = self.chunks.pop(0)
        assert len(c) <= n
        return c

    def close(self) -> None:
        pass

    def send(self, b: bytes) -> int:
        self.sent += b
        return len(b)


def client(v5: bool, got: list[tuple[str, bytes, int, int, bool]]) -> FastClient:
    c = FastClient(callback_api_version=CallbackAPIVersion.VERSION2, client_id="t",
                   protocol=MQTTProtocolVersion.MQTTv5 if v5 else MQTTProtocolVersion.MQTTv311,
                   on_publish_fast=lambda *a: got.append(a))
    return c


@pytest.mark.parametrize("v5", [True, False])
def test_parse_matches_paho(v5: bool) -> None:
    props = b""
    if v5:
        p = Properties(PacketTypes.PUBLISH)
        p.UserProperty = ("k", "v")
        p.MessageExpiryInterval = 60
        props = bytes(p.pack())
        assert len(props) > 5
    raw = publish("livinglab/v1/s/d/telemetry", b'{"v":1}' * 50, 1, 4242, v5, True, props)
    header = raw[0]
    i = 1
    while raw[i] & 128:
        i += 1
    body = raw[i + 1:]
    ref = _packet.decode_publish(header, body, MQTTProtocolVersion.MQTTv5 if v5 else
                                 MQTTProtocolVersion.MQTTv311)
    topic, payload, qos, mid, retain = parse_publish(header, raw, i + 1, len(raw), v5)
    assert (topic.encode(), payload, qos, mid, retain) == (ref.topic, ref.payload, ref.qos,
                                                            ref.mid, ref.retain)


def test_malformed_lengths_raise() -> None:
    raw = publish("a/b", b"x", 1, 1, False)
    with pytest.raises(MalformedPublish):
        parse_publish(raw[0], raw, 2, 4, False)  # cut inside the packet id


@pytest.mark.parametrize("v5", [True, False])
@pytest.mark.parametrize("chunk", [1, 3, 7, 1000])
def test_stream_in_chunks_with_pingresp_between(v5: bool, chunk: int) -> None:
    msgs = [publish(f"livinglab/v1/s/d{k}/telemetry", bytes([k]) * (k * 37 % 300), 1, k + 1, v5)
            for k in range(20)]
    msgs.insert(7, b"\xd0\x00")  # PINGRESP: paho's own handler clears the ping timer
    msgs.insert(3, publish("x/\xe9/telemetry", b"q0", 0, 0, v5))  # QoS 0, non-ASCII topic
    stream = b"".join(msgs)
    got: list[tuple[str, bytes, int, int, bool]] = []
    c = client(v5, got)
    c._sock = FakeSock([stream[i:i + chunk] for i in range(0, len(stream), chunk)])  # type: ignore[assignment]
    c._ping_t = 123.0
    for _ in range(len(stream) + 2):
        assert c.loop_read() == paho.MQTT_ERR_SUCCESS
    assert [g[3] for g in got if g[2] == 1] == list(range(1, 21))
    assert got[3] == ("x/\xe9/telemetry", b"q0", 0, 0, False)
    assert got[5][1] == bytes([4]) * (4 * 37 % 300)  # d4: after the QoS 0 one
    assert c._ping_t == 0
    assert c.slow_packets == 1 and c.fast_packets == 21
    assert not c._rbuf


def test_ack_many_one_write_of_pubacks() -> None:
    c = client(True, [])
    sock = FakeSock([])
    c._sock = sock  # type: ignore[assignment]
    c.on_socket_register_write = None
    c.ack_many([1, 2, 65535])
    c.loop_write()
    assert bytes(sock.sent) == b"\x40\x02\x00\x01\x40\x02\x00\x02\x40\x02\xff\xff"


def test_connection_closed_by_peer() -> None:
    c = client(False, [])

    class Eof(FakeSock):
        def recv(self, n: int) -> bytes:
            return b""

    c._sock = Eof([])  # type: ignore[assignment]
    assert c.loop_read() == paho.MQTT_ERR_CONN_LOST
    assert c._sock is None
