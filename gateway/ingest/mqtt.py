"""MQTT ingress: paho-mqtt 2 driven from the asyncio loop, with acks the app controls.

Why paho and not aiomqtt: aiomqtt 2.x sends PUBACK before the application sees a
message (aiomqtt issue #345), so a crash between PUBACK and the buffer commit
loses it. Here ``manual_ack=True`` lets the pipeline call :meth:`MqttSource.ack`
only after the durable buffer has committed the message.

Why the external-loop hooks: paho's socket is registered with the event loop
(``add_reader``/``add_writer``), so ``on_message`` runs on the loop thread and
only appends to the pipeline's pending list; no locks, no second thread. The one
exception is ``connect``: paho resolves the host, opens the socket and (with TLS)
does the whole handshake inside it, blocking, so it runs in a worker thread and
the socket callbacks it fires are handed to the loop (``_on_loop``). A silent or
slow peer then stalls neither the watchdog nor ``/healthz``.

Acks belong to a connection. Every successful connect bumps ``generation``; a
message remembers the generation it arrived on, and an ack for an older one is
dropped (the broker redelivers the message on the new connection and the
buffer's dedup drops the copy).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from gateway.errors import GatewayError
from gateway.ingest.fastread import FastClient
from gateway.ingest.message import Message
from protocols import mqtt_tls
from protocols.config import Config

log = logging.getLogger("livinglab.gateway.mqtt")


class BrokerUnreachable(GatewayError):
    """The broker did not accept a connection within the allowed time."""

    def __init__(self, host: str, port: int, why: str = "") -> None:
        self.host, self.port = host, port
        if why.startswith("TLS"):  # the reason carries its own fix
            super().__init__(f"MQTT broker at {host}:{port}: {why}")
            return
        super().__init__(f"cannot reach MQTT broker at {host}:{port}"
                         f"{' (' + why + ')' if why else ''} "
                         "(is mosquitto running? check [mqtt] host/port)")


class TlsSetupError(GatewayError):
    """The TLS files named in [mqtt] cannot be used."""


def tls_context(ca_file: Path | None, cert_file: Path | None = None,
                key_file: Path | None = None) -> ssl.SSLContext:
    """Verified TLS (:func:`protocols.mqtt_tls.tls_context`, the one setup every MQTT
    client uses), its failure as the gateway's :class:`TlsSetupError`."""
    try:
        return mqtt_tls.tls_context(ca_file, cert_file, key_file)
    except mqtt_tls.MqttTlsError as exc:
        raise TlsSetupError(str(exc)) from None


def tls_reason(exc: ssl.SSLError) -> str:
    """One line for a failed handshake, with the fix."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (f"TLS: broker certificate rejected: {exc.verify_message} (check [mqtt] "
                "ca_file is the CA that signed the broker's certificate and [mqtt] host is "
                "one of its names)")
    return f"TLS handshake failed: {exc.reason or exc} (is this a TLS listener? check [mqtt] port)"


class MqttSource:
    """The gateway's MQTT connection: subscribe, deliver, ack, publish, reconnect.

    ``deliver`` is called on the loop thread for every message. ``ack`` sends a
    PUBACK only if the message arrived on the current connection.
    """

    def __init__(self, cfg: Config, subscription: str, deliver: Callable[[Message], None],
                 will_topic: str, will_payload: bytes,
                 on_connect: Callable[[], None] | None = None) -> None:
        self._cfg = cfg
        self._m = cfg.mqtt
        self._subscription = subscription
        self._deliver = deliver
        self._on_connect_cb = on_connect
        self.generation = 0
        self.connected = False
        self.stale_acks = 0
        self.disconnected_since: float | None = time.monotonic()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._misc: asyncio.Task[None] | None = None
        self._connack: asyncio.Future[bool] | None = None
        self._published: dict[int, asyncio.Future[bool]] = {}
        self._lost = asyncio.Event()
        self._closing = False
        v5 = self._m.protocol == "5"
        # paho with a batched reader and batched PUBACKs (gateway.ingest.fastread, issue 21)
        self._client = FastClient(
            on_publish_fast=self._on_publish_fast,
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=cfg.client_id,
            clean_session=None if v5 else False,
            protocol=MQTTProtocolVersion.MQTTv5 if v5 else MQTTProtocolVersion.MQTTv311,
            reconnect_on_failure=False,
            manual_ack=True,
        )
        c = self._client
        if self._m.username:
            c.username_pw_set(self._m.username, self._m.password or None)
        try:
            ctx = mqtt_tls.client_tls(cfg)
        except mqtt_tls.MqttTlsError as exc:
            raise TlsSetupError(str(exc)) from None
        if ctx is not None:
            c.tls_set_context(ctx)
        c.will_set(will_topic, will_payload, qos=1, retain=True)
        c.max_inflight_messages_set(100)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_message = self._on_message
        c.on_socket_open = self._on_socket_open
        c.on_socket_close = self._on_socket_close
        c.on_socket_register_write = self._on_register_write
        c.on_socket_unregister_write = self._on_unregister_write
        c.on_publish = self._on_publish

    # -- public -----------------------------------------------------------------

    async def connect(self, timeout_s: float = 0.0) -> None:
        """Connect and subscribe, retrying with backoff; ``timeout_s`` 0 = forever.

        The first failure is logged as one clear line; later ones every minute.
        Raises :class:`BrokerUnreachable` when ``timeout_s`` runs out.
        """
        self._loop = asyncio.get_running_loop()
        start = time.monotonic()
        delay, last_log, failures = 0.2, 0.0, 0
        while not self._closing:
            why = await self._try_connect()
            if why is None:
                if failures:
                    log.info("connected to MQTT broker at %s:%d", self._m.host, self._m.port)
                return
            failures += 1
            now = time.monotonic()
            if failures == 1 or now - last_log > 60:
                log.error("livinglab: %s; retrying", BrokerUnreachable(self._m.host, self._m.port,
                                                                         why))
                last_log = now
            if timeout_s and now - start + delay > timeout_s:
                raise BrokerUnreachable(self._m.host, self._m.port, why)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def run(self, stop: asyncio.Event) -> None:
        """Reconnect whenever the connection drops, until ``stop`` is set."""
        while not stop.is_set():
            lost = asyncio.ensure_future(self._lost.wait())
            stopped = asyncio.ensure_future(stop.wait())
            await asyncio.wait({lost, stopped}, return_when=asyncio.FIRST_COMPLETED)
            lost.cancel()
            stopped.cancel()
            if stop.is_set() or self._closing:
                return
            self._lost.clear()
            log.warning("MQTT connection lost; reconnecting")
            await self.connect()

    def ack(self, msg: Message) -> bool:
        """PUBACK ``msg`` if it came on the current connection; False if dropped."""
        if msg.qos == 0 or msg.mid == 0:
            return True
        if msg.generation != self.generation or not self.connected:
            self.stale_acks += 1
            return False
        rc = self._client.ack(msg.mid, msg.qos)
        return rc == MQTTErrorCode.MQTT_ERR_SUCCESS

    def ack_many(self, msgs: Sequence[Message]) -> int:
        """PUBACK every QoS 1 message of a committed batch that came on the current
        connection, in one write; returns how many were acked."""
        gen, mids = self.generation, []
        for msg in msgs:
            if msg.qos == 0 or msg.mid == 0:
                continue
            if msg.generation != gen or not self.connected:
                self.stale_acks += 1
            elif msg.qos == 1:
                mids.append(msg.mid)
            else:
                self._client.ack(msg.mid, msg.qos)
        self._client.ack_many(mids)
        return len(mids)

    def publish(self, topic: str, payload: bytes, qos: int = 0,
                retain: bool = False) -> paho.MQTTMessageInfo | None:
        """Publish if connected (QoS 0 reports are simply skipped while offline)."""
        if not self.connected:
            return None
        return self._client.publish(topic, payload, qos=qos, retain=retain)

    async def publish_wait(self, topic: str, payload: bytes, timeout_s: float) -> bool:
        """QoS 1 publish and wait (bounded) for the broker's PUBACK, as an event
        (``on_publish`` resolves a future per message id), not by polling."""
        assert self._loop is not None
        done: asyncio.Future[bool] = self._loop.create_future()
        info = self.publish(topic, payload, qos=1, retain=True)
        if info is None:
            return False
        if info.is_published():
            return True
        self._published[info.mid] = done
        try:
            return await asyncio.wait_for(done, timeout_s)
        except TimeoutError:
            return info.is_published()
        finally:
            self._published.pop(info.mid, None)

    async def close(self) -> None:
        """Clean DISCONNECT (the broker keeps the session and unacked messages)."""
        self._closing = True
        if self.connected:
            self._client.disconnect()
            end = time.monotonic() + 1
            while self.connected and time.monotonic() < end:
                await asyncio.sleep(0.02)
        self._stop_misc()

    # -- connecting -------------------------------------------------------------

    async def _try_connect(self) -> str | None:
        """One attempt; returns None on success or a short reason."""
        host, port = self._m.host, self._m.port
        try:
            # A cheap reachability probe first, so a broker that is down costs no thread.
            _, w = await asyncio.wait_for(asyncio.open_connection(host, port), 5)
            w.close()
        except (OSError, TimeoutError) as exc:
            return type(exc).__name__ if isinstance(exc, TimeoutError) else (
                exc.strerror or str(exc))
        assert self._loop is not None
        self._connack = self._loop.create_future()
        props: Properties | None = None
        if self._m.protocol == "5":
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = self._m.session_expiry_s
            props.ReceiveMaximum = self._m.receive_maximum
        try:
            # paho's connect blocks (DNS, TCP, the TLS handshake): a worker thread, so
            # the loop keeps pinging the watchdog and answering /healthz meanwhile
            if self._m.protocol == "5":
                await asyncio.wait_for(asyncio.to_thread(
                    self._client.connect, host, port, self._m.keepalive, clean_start=False,
                    properties=props), 15)
            else:
                await asyncio.wait_for(asyncio.to_thread(
                    self._client.connect, host, port, self._m.keepalive), 15)
        except TimeoutError:
            return "no answer to CONNECT within 15 s"
        except ssl.SSLError as exc:
            return tls_reason(exc)
        except (OSError, ValueError) as exc:
            return str(exc)
        try:
            ok = await asyncio.wait_for(self._connack, 10)
        except TimeoutError:
            self._client.disconnect()
            return "no CONNACK within 10 s"
        return None if ok else "connection refused (check [mqtt] username/password)"

    # -- paho callbacks (all on the loop thread) ---------------------------------

    def _on_connect(self, client: paho.Client, userdata: Any, flags: Any, rc: Any,
                    props: Any = None) -> None:
        if rc.is_failure:
            if self._connack is not None and not self._connack.done():
                self._connack.set_result(False)
            return
        self.generation += 1
        self.connected = True
        self.disconnected_since = None
        client.subscribe(self._subscription, qos=1)
        log.info("MQTT connected (session present: %s, generation %d)",
                 getattr(flags, "session_present", False), self.generation)
        if self._on_connect_cb is not None:
            self._on_connect_cb()
        if self._connack is not None and not self._connack.done():
            self._connack.set_result(True)

    def _on_disconnect(self, client: paho.Client, userdata: Any, flags: Any, rc: Any,
                       props: Any = None) -> None:
        self._mark_down()

    def _mark_down(self) -> None:
        was = self.connected
        self.connected = False
        if self.disconnected_since is None:
            self.disconnected_since = time.monotonic()
        if self._connack is not None and not self._connack.done():
            self._connack.set_result(False)
        if was and not self._closing:
            self._lost.set()

    def _on_message(self, client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        self._deliver(Message(topic=msg.topic, payload=bytes(msg.payload),
                              received_at=time.time(), qos=msg.qos, mid=msg.mid,
                              generation=self.generation, retain=bool(msg.retain)))

    def _on_publish_fast(self, topic: str, payload: bytes, qos: int, mid: int,
                         retain: bool) -> None:
        self._deliver(Message(topic, payload, time.time(), qos, mid, self.generation, retain))

    def _on_publish(self, client: paho.Client, userdata: Any, mid: int, rc: Any,
                    props: Any = None) -> None:
        fut = self._published.get(mid)
        if fut is not None and not fut.done():
            fut.set_result(True)

    def _on_loop(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the loop thread: now when called there, else handed over (paho
        fires socket callbacks from inside ``connect``, which runs in a worker thread)."""
        assert self._loop is not None
        try:
            on_loop = asyncio.get_running_loop() is self._loop
        except RuntimeError:
            on_loop = False
        if on_loop:
            fn()
        else:
            self._loop.call_soon_threadsafe(fn)

    def _on_socket_open(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        def register() -> None:
            assert self._loop is not None
            self._loop.add_reader(sock, client.loop_read)
            self._stop_misc()
            self._misc = self._loop.create_task(self._misc_loop())
        self._on_loop(register)

    def _on_socket_close(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        def unregister() -> None:
            assert self._loop is not None
            self._loop.remove_reader(sock)
            self._loop.remove_writer(sock)
            self._stop_misc()
            self._mark_down()
        self._on_loop(unregister)

    def _on_register_write(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        def register() -> None:
            assert self._loop is not None
            self._loop.add_writer(sock, client.loop_write)
        self._on_loop(register)

    def _on_unregister_write(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        def unregister() -> None:
            assert self._loop is not None
            self._loop.remove_writer(sock)
        self._on_loop(unregister)

    async def _misc_loop(self) -> None:
        """Keepalive pings and timeouts: paho needs ``loop_misc`` about once a second."""
        while self._client.loop_misc() == MQTTErrorCode.MQTT_ERR_SUCCESS:
            await asyncio.sleep(1)

    def _stop_misc(self) -> None:
        misc, self._misc = self._misc, None
        if misc is None or misc.done():
            return
        try:
            current = asyncio.current_task()
        except RuntimeError:  # paho's __del__ after the loop is gone
            current = None
        if misc is not current:
            misc.cancel()


__all__ = ["BrokerUnreachable", "Message", "MqttSource", "TlsSetupError", "tls_context"]
