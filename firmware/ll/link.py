# The robust layer over ll/mqtt.py: connect with capped backoff and jitter, birth
# and last will, config subscription, one QoS 1 message in flight from the outbox
# (removed only on its PUBACK), keepalive pings. Buffers are reused across reconnects.
import gc
import os
import sys
import time

from ll import jsonw
from ll.mqtt import MQTTClient, MQTTError, TLSError

_BACKOFF_MIN_MS = 1000
_BACKOFF_MAX_MS = 30000
_ACK_TIMEOUT_MS = 10000
_OFFLINE = b'{"state":"offline"}'


def _jitter(ms):
    return ms * 3 // 4 + ms * os.urandom(1)[0] // 512


def _log(msg):
    sys.stderr.write("ll: ")
    sys.stderr.write(msg)
    sys.stderr.write("\n")


_REFUSED = ("", "protocol version", "client id rejected", "server unavailable",
            "bad username or password", "not authorized")


def _tls():
    import ll.tlslink

    return ll.tlslink


def _find_age(buf, start, end):
    """Offsets of every '"age":' number slot in buf[start:end]."""
    i = start
    while i + 6 <= end:
        if buf[i] == 34 and buf[i + 1] == 97 and buf[i + 2] == 103 and buf[i + 3] == 101 \
                and buf[i + 4] == 34 and buf[i + 5] == 58:
            yield i + 6
            i += 6
        else:
            i += 1


class Link:
    def __init__(self, cfg, board, outbox, on_config, status_writer, on_update=None):
        self.board = board
        self.outbox = outbox
        self.on_config = on_config
        self.status_writer = status_writer  # fn() -> (buf, n)
        base = "%s/%s/%s/" % (cfg.prefix, cfg.site, cfg.device)
        self.t_telemetry = (base + "telemetry").encode()
        self.t_status = (base + "status").encode()
        self.t_config = (base + "config").encode()
        self.t_update = (base + "update").encode()
        self.on_update = on_update  # fn(msg) for the OTA control message (ll/ota.py)
        self.acked = 0  # telemetry PUBACKs received (an update confirms after one)
        tl = _tls() if cfg.mqtt_tls else None  # ll/tlslink.py: loaded only for TLS
        self.client = MQTTClient(cfg.device.encode(), cfg.mqtt_host, cfg.mqtt_port,
                                 cfg.mqtt_username.encode(), cfg.mqtt_password.encode(),
                                 cfg.keepalive, ca=tl.read_ca(cfg) if tl else None)
        self.client.on_message = self._message
        self.client.feed = board.wdt_feed
        self.client.on_puback = self._puback
        self.keepalive_ms = cfg.keepalive * 1000
        self.speed = board.speed
        self.connected = False
        self.backoff = _BACKOFF_MIN_MS
        self.next_try = time.ticks_ms()
        self.inflight = None  # outbox token awaiting PUBACK
        self.inflight_pid = 0
        self.sent_at = time.ticks_ms()
        self.last_tx = self.sent_at
        self.last_rx = self.sent_at
        self.connects = 0
        self.failures = 0
        self.tls_errors = 0
        self.tls_error = ""  # the last certificate/handshake problem, for the status
        self.refused = 0  # the last CONNACK refusal code (4/5: wrong password)
        self.tls = cfg.mqtt_tls
        self.tls_heap = cfg.mqtt_tls and cfg.sim_tls_heap  # unix port: simulate mbedTLS
        self.ballast = None  # simulated mbedTLS session memory while connected
        self.reserve = None
        if tl is not None:
            self.reserve, self.client.ctx = tl.adopt()
        self._take_reserve()

    # -- callbacks ---------------------------------------------------------
    def _message(self, topic, msg):
        if bytes(topic) == self.t_config:
            self.on_config(msg)
        elif self.on_update is not None and bytes(topic) == self.t_update:
            self.on_update(msg)

    def _puback(self, pid):
        if self.inflight is not None and pid == self.inflight_pid:
            self.outbox.pop(self.inflight)
            self.inflight = None
            self.acked += 1

    # -- connection --------------------------------------------------------
    def _take_reserve(self):
        if self.tls and self.reserve is None:
            gc.collect()
            self.reserve = _tls().reserve()

    def _connect(self, now):
        c = self.client
        if self.reserve is not None:
            self.reserve = None  # the handshake gets this contiguous block
            gc.collect()
        if self.tls_heap:
            self.ballast = None
            self.ballast = _tls().connect_sim(c, self.t_status, _OFFLINE)
        else:
            c.connect(True, self.t_status, _OFFLINE, True, 1)
        self.connected = True
        self.connects += 1
        self.inflight = None
        self.last_tx = self.last_rx = time.ticks_ms()
        c.subscribe(self.t_config, 1)
        if self.on_update is not None:
            c.subscribe(self.t_update, 1)
        self.publish_status()
        self.backoff = _BACKOFF_MIN_MS

    def _why(self, e):
        """Remember and log why a connect failed (TLS and refusals are not transient)."""
        if isinstance(e, TLSError):
            self.tls_errors += 1
            self.tls_error = _tls().short(str(e.args[1]) if len(e.args) > 1 else "tls")
            _log("tls_error: %s (check the broker certificate and the device's CA)"
                 % self.tls_error)
        elif isinstance(e, MQTTError) and 0 < e.args[0] < len(_REFUSED):
            self.refused = e.args[0]
            _log("mqtt refused: %s" % _REFUSED[e.args[0]])

    def _fail(self, now):
        self.ballast = None
        self.client.close()
        self._take_reserve()  # into the hole the session leaves, before anything else
        self.connected = False
        self.inflight = None
        self.failures += 1
        if self.failures % 4 == 0:
            self.client.addr = None  # the broker may have moved: resolve again

        self.next_try = time.ticks_add(now, int(_jitter(self.backoff) / self.speed))
        self.backoff = min(self.backoff * 2, _BACKOFF_MAX_MS)

    def publish_status(self):
        if not self.connected:
            return
        buf, n = self.status_writer()
        self.client.publish(self.t_status, buf, n, 1, True, self.client.next_pid())
        self.last_tx = time.ticks_ms()

    def status(self, now):
        try:
            self.publish_status()
        except OSError:
            self._fail(now)

    def close(self):
        """Orderly disconnect (the broker then does NOT publish the last will)."""
        if self.connected:
            try:
                self.client.disconnect()
            except OSError:
                pass
        self.connected = False

    # -- the pump ------------------------------------------------------------
    def service(self, now, wait_ms=0):
        """One pass; waits up to wait_ms for incoming packets when connected."""
        if not self.connected:
            if time.ticks_diff(now, self.next_try) < 0 or not self.board.net_ready(now):
                return False
            self.board.wdt_feed()  # connect and the TLS handshake may block for seconds
            try:
                self._connect(now)
            except OSError as e:
                self._why(e)
                self._fail(now)
                return False
        try:
            self._send_next(now)
            kind = self.client.check(wait_ms)
            while kind:
                self.last_rx = time.ticks_ms()
                self._send_next(now)
                kind = self.client.check(0)
            now = time.ticks_ms()
            if self.inflight is not None and time.ticks_diff(now, self.sent_at) > _ACK_TIMEOUT_MS:
                raise OSError(110)  # no PUBACK: the session is dead, reconnect and resend
            if time.ticks_diff(now, self.last_rx) > self.keepalive_ms * 3 // 2:
                raise OSError(110)  # no PINGRESP (or anything) for 1.5 keepalives
            if time.ticks_diff(now, self.last_tx) > self.keepalive_ms // 2:
                self.client.ping()
                self.last_tx = now
        except OSError:
            self._fail(time.ticks_ms())
            return False
        return True

    def _send_next(self, now):
        if self.inflight is not None:
            return
        item = self.outbox.peek()
        if item is None:
            return
        token, mv, n, age_off, tick = item
        if age_off >= 0:
            age = time.ticks_diff(time.ticks_ms(), tick)
            for off in _find_age(mv, age_off - 6, n):
                jsonw.patch_age(mv, off, age)
        pid = self.client.next_pid()
        self.inflight = token
        self.inflight_pid = pid
        self.sent_at = time.ticks_ms()
        self.client.publish(self.t_telemetry, mv, n, 1, False, pid)
        self.last_tx = self.sent_at
