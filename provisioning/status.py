"""Device status from the broker: retained ``status`` topics, and waiting for ``online``.

Uses the gateway's MQTT account (``[mqtt] username/password``), which may read
every topic of its site. Everything blocks for a bounded time; paho runs its
network loop in its own thread and hands messages over through a lock.
"""

from __future__ import annotations

import ssl
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from protocols.jsonstrict import JsonError, loads_strict
from protocols.mqtt_tls import MqttTlsError, tls_context

from .errors import BrokerError


@dataclass(frozen=True)
class StatusMessage:
    site: str
    device: str
    payload: dict[str, Any]
    retained: bool
    received_at: float

    @property
    def state(self) -> str:
        state = self.payload.get("state")
        return state if state in ("online", "offline") else "unknown"


def _parse(topic: str, raw: bytes, retained: bool) -> StatusMessage | None:
    parts = topic.split("/")
    if len(parts) < 4 or parts[-1] != "status" or parts[-3] == "_gateway":
        return None
    payload = loads_strict(raw)  # JsonError: NaN, lone surrogates, deep nesting, not UTF-8
    if not isinstance(payload, dict):
        return None
    return StatusMessage(parts[-3], parts[-2], payload, retained, time.time())


class StatusWatcher:
    """A connected subscriber to some status topics; use as a context manager."""

    def __init__(self, host: str, port: int, username: str = "", password: str = "",
                 client_id: str = "", ca_file: Path | None = None,
                 cert_file: Path | None = None, key_file: Path | None = None) -> None:
        self.host, self.port = host, port
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
        if username:
            self._client.username_pw_set(username, password)
        if ca_file is not None or cert_file is not None:
            try:  # the one MQTT TLS setup: the site CA and the broker's host name
                ctx = tls_context(ca_file, cert_file, key_file)
            except MqttTlsError as exc:
                raise BrokerError(str(exc)) from None
            self._client.tls_set_context(ctx)
        self._lock = threading.Condition()
        self._messages: list[StatusMessage] = []
        self.skipped = 0  # statuses that were not strict JSON
        self._connected = threading.Event()
        self._refused: str | None = None
        self._lost = False
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message

    def _on_connect(self, _c: mqtt.Client, _u: object, _f: object, rc: ReasonCode,
                    _p: object = None) -> None:
        if rc.is_failure:
            self._refused = str(rc)
        self._connected.set()

    def _on_disconnect(self, _c: mqtt.Client, _u: object, _f: object, _rc: object,
                       _p: object = None) -> None:
        with self._lock:
            self._lost = True
            self._lock.notify_all()

    def _on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        try:
            parsed = _parse(msg.topic, bytes(msg.payload), bool(msg.retain))
        except JsonError:  # a hostile status is skipped and counted, never fatal
            with self._lock:
                self.skipped += 1
            return
        if parsed is not None:
            with self._lock:
                self._messages.append(parsed)
                self._lock.notify_all()

    def _where(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self, topics: list[str], timeout_s: float = 5.0) -> None:
        """Connect and subscribe, or :class:`BrokerError` naming the broker and the fix."""
        try:
            self._client.connect(self.host, self.port, keepalive=30)
        except ssl.SSLError as exc:
            reason = f"TLS: {getattr(exc, 'verify_message', '') or exc.reason or exc}"
            raise BrokerError(f"broker {self._where()} refused by TLS: {reason} (check [mqtt] "
                              "ca_file and that [mqtt] host is in the broker certificate)",
                              reason) from None
        except OSError as exc:
            reason = str(exc.strerror or exc)
            raise BrokerError(f"broker {self._where()} unreachable: {reason} "
                              "(check [mqtt] host/port and that the broker runs)",
                              reason) from None
        self._client.loop_start()
        if not self._connected.wait(timeout_s):
            self.close()
            raise BrokerError(f"broker {self._where()} did not answer within {timeout_s:g}s "
                              "(check [mqtt] host/port)", f"no answer within {timeout_s:g}s")
        if self._refused:
            self.close()
            raise BrokerError(f"broker {self._where()} refused the connection: "
                              f"{self._refused} (check [mqtt] username/password)",
                              f"refused: {self._refused}")
        for topic in topics:
            self._client.subscribe(topic, qos=1)

    def close(self) -> None:
        self._client.loop_stop()
        self._client.disconnect()

    def __enter__(self) -> StatusWatcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def collect(self, seconds: float) -> list[StatusMessage]:
        """Everything received within ``seconds`` (retained messages arrive first)."""
        time.sleep(seconds)
        with self._lock:
            return list(self._messages)

    def wait_online(self, site: str, device: str, timeout_s: float) -> StatusMessage:
        """The first live (not retained) ``online`` status of ``device``.

        Retained messages are ignored: they predate the reset and may be an
        ``online`` left by the previous firmware.
        """
        end = time.monotonic() + timeout_s
        with self._lock:
            while True:
                for msg in self._messages:
                    if (msg.site, msg.device) == (site, device) and not msg.retained \
                            and msg.state == "online":
                        return msg
                if self._lost:
                    raise BrokerError(f"lost the connection to broker {self._where()} while "
                                      f"waiting for {device} to come online (the board is "
                                      "flashed; check the broker, or use --no-wait)")
                left = end - time.monotonic()
                if left <= 0:
                    raise BrokerError(f"{device} did not come online within {timeout_s:g}s "
                                      "(the board is flashed; check its Wi-Fi settings and "
                                      "that it can reach the broker, or use --no-wait)")
                self._lock.wait(min(left, 0.5))


def status_topic(prefix: str, site: str, device: str = "+") -> str:
    return f"{prefix}/{site}/{device}/status"
