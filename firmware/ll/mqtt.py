# Minimal MQTT 3.1.1 client (umqtt.simple style): protocol only, no retries.
# The robust layer (ll/link.py) owns reconnects, backoff and the in-flight message.
# All buffers are allocated once here and reused across reconnects.
import select
import socket

from micropython import const

_CONNECT = const(0x10)
_CONNACK = const(0x20)
_PUBLISH = const(0x30)
_PUBACK = const(0x40)
_SUBSCRIBE = const(0x82)
_SUBACK = const(0x90)
_PINGREQ = const(0xC0)
_PINGRESP = const(0xD0)
_DISCONNECT = const(0xE0)


class MQTTError(OSError):
    """Protocol failure (refused CONNACK, malformed packet): the link reconnects."""


class TLSError(OSError):
    """The broker's certificate was refused (or the handshake failed): never plain text.

    mbedTLS reports certificate problems as ValueError; connect() turns them into
    this OSError subclass so the link's one failure path (backoff, count) handles
    them, with the reason kept in ``args[1]``.
    """


class MQTTClient:
    def __init__(self, client_id, host, port=1883, user="", password="", keepalive=30,
                 rx_size=768, timeout_s=5, ca=None):
        self.client_id = client_id
        self.host = host
        self.ca = ca  # the CA certificate (DER bytes): TLS on, verified, no fallback
        self.ctx = None  # the SSLContext, built once on first connect and reused
        self.feed = None  # fn(): the watchdog, fed between the TCP connect and the handshake
        self.port = port
        self.user = user
        self.password = password
        self.keepalive = keepalive
        self.timeout_s = timeout_s
        self.sock = None
        self.addr = None  # resolved once: DNS can block longer than a watchdog period
        self.pid = 0
        self.on_message = None  # fn(topic: memoryview, msg: memoryview)
        self.on_puback = None  # fn(pid: int)
        self._hdr = bytearray(5)
        self._b4 = bytearray(4)
        self._b4mv = memoryview(self._b4)
        self._rx = bytearray(rx_size)
        self._rxmv = memoryview(self._rx)
        self._poll = select.poll()

    # -- low level -------------------------------------------------------
    def _write(self, buf, n=-1):
        if n < 0:
            n = len(buf)
        s = self.sock
        if s is None:
            raise OSError(107)  # ENOTCONN
        mv = memoryview(buf)
        off = 0
        while off < n:
            w = s.write(mv[off:n])
            if not w:
                raise OSError(104)
            off += w

    def _read_into(self, mv, n):
        s = self.sock
        if s is None:
            raise OSError(107)  # ENOTCONN
        off = 0
        while off < n:
            r = s.readinto(mv[off:n])
            if not r:
                raise OSError(104)  # ECONNRESET: peer closed
            off += r

    def _fixed(self, kind, length):
        h = self._hdr
        h[0] = kind
        i = 1
        while True:
            b = length & 0x7F
            length >>= 7
            if length:
                b |= 0x80
            h[i] = b
            i += 1
            if not length:
                break
        self._write(h, i)

    def _str(self, s):
        b = self._b4
        n = len(s)
        b[0] = n >> 8
        b[1] = n & 0xFF
        self._write(b, 2)
        if n:
            self._write(s)

    def _u16(self, v):
        b = self._b4
        b[0] = v >> 8
        b[1] = v & 0xFF
        self._write(b, 2)

    def next_pid(self):
        self.pid = self.pid % 65535 + 1
        return self.pid

    # -- session ---------------------------------------------------------
    def connect(self, clean=True, will_topic=None, will_msg=None, will_retain=False,
                will_qos=0):
        """Open TCP and send CONNECT; return the CONNACK session-present flag."""
        self.close()
        if self.addr is None:
            self.addr = socket.getaddrinfo(self.host, self.port, 0, socket.SOCK_STREAM)[0][-1]
        s = socket.socket()
        self.sock = s
        s.settimeout(self.timeout_s)
        s.connect(self.addr)
        if self.ca is not None:
            if self.feed is not None:
                self.feed()  # the TCP connect may have used most of a watchdog period
            from ll.tlslink import wrap

            s = self.sock = wrap(self, s)
        flags = 0x02 if clean else 0
        length = 10 + 2 + len(self.client_id)
        if will_topic:
            flags |= 0x04 | (will_qos << 3) | (0x20 if will_retain else 0)
            length += 4 + len(will_topic) + len(will_msg)
        if self.user:
            flags |= 0x80
            length += 2 + len(self.user)
            if self.password:
                flags |= 0x40
                length += 2 + len(self.password)
        self._fixed(_CONNECT, length)
        self._str(b"MQTT")
        b = self._b4
        b[0] = 4  # protocol level 3.1.1
        b[1] = flags
        b[2] = self.keepalive >> 8
        b[3] = self.keepalive & 0xFF
        self._write(b, 4)
        self._str(self.client_id)
        if will_topic:
            self._str(will_topic)
            self._str(will_msg)
        if self.user:
            self._str(self.user)
            if self.password:
                self._str(self.password)
        self._read_into(self._b4mv, 4)
        if b[0] != _CONNACK or b[1] != 2:
            raise MQTTError(0)  # not a CONNACK (codes 1..5 are the broker's refusals)
        if b[3]:
            raise MQTTError(b[3])  # 1..5: refused (version, id, unavailable, auth)
        self._poll.register(s, select.POLLIN)
        return b[2] & 1

    def close(self):
        s = self.sock
        if s is not None:
            self.sock = None
            try:
                self._poll.unregister(s)
            except (OSError, ValueError, KeyError):
                pass
            try:
                s.close()
            except OSError:
                pass

    def disconnect(self):
        try:
            self._fixed(_DISCONNECT, 0)
        finally:
            self.close()

    def ping(self):
        self._fixed(_PINGREQ, 0)

    def publish(self, topic, msg, n=-1, qos=0, retain=False, pid=0, dup=False):
        """Send one PUBLISH of ``msg[:n]``; for QoS 1 the caller picks ``pid`` and awaits PUBACK."""
        if n < 0:
            n = len(msg)
        length = 2 + len(topic) + n + (2 if qos else 0)
        self._fixed(_PUBLISH | (qos << 1) | (1 if retain else 0) | (8 if dup else 0), length)
        self._str(topic)
        if qos:
            self._u16(pid)
        self._write(msg, n)

    def subscribe(self, topic, qos=1):
        pid = self.next_pid()
        self._fixed(_SUBSCRIBE, 2 + 2 + len(topic) + 1)
        self._u16(pid)
        self._str(topic)
        b = self._b4
        b[0] = qos
        self._write(b, 1)
        return pid

    # -- incoming --------------------------------------------------------
    def check(self, timeout_ms=0):
        """Handle at most one incoming packet; return its type (0 if none arrived)."""
        if self.sock is None:
            raise OSError(107)  # ENOTCONN
        ev = self._poll.poll(timeout_ms)
        if not ev:
            return 0
        if ev[0][1] & (select.POLLHUP | select.POLLERR):
            raise OSError(104)
        b = self._b4mv
        self._read_into(b, 1)
        kind = self._b4[0] & 0xF0
        first = self._b4[0]
        length = 0
        shift = 0
        while True:
            self._read_into(b, 1)
            length |= (self._b4[0] & 0x7F) << shift
            if not self._b4[0] & 0x80:
                break
            shift += 7
            if shift > 21:
                raise MQTTError(2)
        if kind == _PUBLISH:
            self._on_publish(first, length)
        elif kind == _PUBACK or kind == _SUBACK:
            if length > len(self._rx):
                raise MQTTError(3)
            self._read_into(self._rxmv, length)
            pid = self._rx[0] << 8 | self._rx[1]
            if kind == _PUBACK and self.on_puback is not None:
                self.on_puback(pid)
        else:
            self._skip(length)
        return kind

    def _skip(self, length):
        mv = self._rxmv
        cap = len(self._rx)
        while length:
            n = length if length < cap else cap
            self._read_into(mv, n)
            length -= n

    def _on_publish(self, first, length):
        qos = (first >> 1) & 3
        if length > len(self._rx):
            # Too big for our buffer (config payloads are tiny): consume and ack unread.
            self._read_into(self._b4mv, 2)
            tl = self._b4[0] << 8 | self._b4[1]
            self._skip(tl)
            if qos:
                self._read_into(self._b4mv, 2)
                pid = self._b4[0] << 8 | self._b4[1]
                self._skip(length - 2 - tl - 2)
                self._puback(pid)
            else:
                self._skip(length - 2 - tl)
            return
        mv = self._rxmv
        self._read_into(mv, length)
        rx = self._rx
        tl = rx[0] << 8 | rx[1]
        off = 2 + tl
        pid = 0
        if qos:
            pid = rx[off] << 8 | rx[off + 1]
            off += 2
        if self.on_message is not None:
            self.on_message(mv[2:2 + tl], mv[off:length])
        if qos == 1:
            self._puback(pid)

    def _puback(self, pid):
        self._fixed(_PUBACK, 2)
        self._u16(pid)
