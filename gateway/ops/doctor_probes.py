"""The I/O behind ``livinglab doctor``: MQTT connects, a store probe, the kernel clock.

Each probe returns plain data (or raises :class:`ProbeError` with one line);
:mod:`gateway.doctor` turns that data into ``ok``/``warn``/``fail`` lines.
Every probe is bounded by a timeout.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import os
import sqlite3
import ssl
import time
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from gateway.errors import GatewayError
from gateway.stores import make_store
from gateway.stores.base import StoreError
from protocols.config import Config, MqttSection
from protocols.mqtt_tls import MqttTlsError, client_tls

__all__ = ["PROBE_MEASUREMENT", "Connack", "ProbeError", "anonymous_accepted",
           "clock_synchronised", "mqtt_connect",
           "broker_login", "session_kept", "store_probe"]

# The one point `doctor` writes to an InfluxDB store per run (no livinglab query reads it):
#   livinglab_doctor,site=<site>,gateway=<id> ok=1i <now>
PROBE_MEASUREMENT = "livinglab_doctor"


class ProbeError(GatewayError):
    """A probe could not get an answer; the message says what happened."""


@dataclass(frozen=True)
class Connack:
    session_present: bool
    session_expiry: int | None  # what an MQTT 5 broker granted, if it said so


def _client(m: MqttSection, client_id: str, clean: bool,
            tls: ssl.SSLContext | None) -> paho.Client:
    v5 = m.protocol == "5"
    c = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=client_id,
                    clean_session=None if v5 else clean,
                    protocol=MQTTProtocolVersion.MQTTv5 if v5 else MQTTProtocolVersion.MQTTv311)
    if m.username:
        c.username_pw_set(m.username, m.password or None)
    if tls is not None:
        c.tls_set_context(tls)
    return c


def mqtt_connect(m: MqttSection, client_id: str, *, clean: bool, expiry: int,
                 timeout_s: float, tls: ssl.SSLContext | None = None
                 ) -> tuple[paho.Client, Connack]:
    """Connect and wait for CONNACK; the caller disconnects. ProbeError on any refusal.
    ``tls``: :func:`protocols.mqtt_tls.client_tls` of the config (the one setup)."""
    c = _client(m, client_id, clean, tls)
    c.connect_timeout = timeout_s
    got: list[Connack] = []
    refused: list[str] = []

    def on_connect(client: paho.Client, userdata: object, flags: paho.ConnectFlags,
                   reason: object, props: Properties | None) -> None:
        if getattr(reason, "is_failure", False):
            refused.append(str(reason))
            return
        exp = getattr(props, "SessionExpiryInterval", None) if props is not None else None
        got.append(Connack(bool(flags.session_present), exp))

    c.on_connect = on_connect
    kwargs: dict[str, object] = {}
    if m.protocol == "5":
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = expiry
        kwargs = {"clean_start": clean, "properties": props}
    try:
        c.connect(m.host, m.port, keepalive=max(m.keepalive, 10), **kwargs)  # type: ignore[arg-type]
        end = time.monotonic() + timeout_s
        while not got and not refused and time.monotonic() < end:
            c.loop(timeout=0.05)
    except (OSError, ssl.SSLError, ValueError) as exc:
        c.disconnect()
        raise ProbeError(str(exc) or type(exc).__name__) from None
    if refused or not got:
        c.disconnect()
        raise ProbeError(f"refused: {refused[0]}" if refused else
                         f"no CONNACK within {timeout_s:g} s")
    return c, got[0]


def _disconnect(c: paho.Client, end_session: bool = False) -> None:
    props = None
    if end_session and c.protocol == MQTTProtocolVersion.MQTTv5:
        props = Properties(PacketTypes.DISCONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = 0
    c.disconnect(properties=props)
    c.loop(timeout=0.05)


def _tls(cfg: Config) -> ssl.SSLContext | None:
    try:
        return client_tls(cfg)
    except MqttTlsError as exc:
        raise ProbeError(str(exc)) from None


def broker_login(cfg: Config, timeout_s: float) -> Connack:
    """Connect with the gateway's login/TLS and a throwaway clean session."""
    c, ack = mqtt_connect(cfg.mqtt, f"{cfg.client_id}-doctor", clean=True, expiry=0,
                          timeout_s=timeout_s, tls=_tls(cfg))
    _disconnect(c)
    return ack


def anonymous_accepted(cfg: Config, timeout_s: float) -> bool:
    """Does the broker at [mqtt] host/port accept a CONNECT without a username?"""
    anon = cfg.mqtt.model_copy(update={"username": "", "password": ""})
    try:
        c, _ = mqtt_connect(anon, f"{cfg.client_id}-doctor-anon", clean=True, expiry=0,
                            timeout_s=timeout_s, tls=_tls(cfg))
    except ProbeError as exc:
        if str(exc).startswith("refused"):
            return False
        raise
    _disconnect(c)
    return True


def session_kept(cfg: Config, timeout_s: float) -> Connack:
    """Open a persistent session, disconnect, reconnect: did the broker keep it?

    Uses its own client id (``<gateway client id>-doctor``) so a running gateway
    is not kicked off; the session is ended at the last disconnect. The first
    CONNACK's granted expiry is returned with the second one's session flag.
    """
    cid, m, tls = f"{cfg.client_id}-doctor", cfg.mqtt, _tls(cfg)
    # v5: a clean start that asks for an expiry; v3.1.1: clean_session=0 is what persists
    c, first = mqtt_connect(m, cid, clean=m.protocol == "5", expiry=m.session_expiry_s,
                            timeout_s=timeout_s, tls=tls)
    _disconnect(c)
    c, second = mqtt_connect(m, cid, clean=False, expiry=m.session_expiry_s,
                             timeout_s=timeout_s, tls=tls)
    _disconnect(c, end_session=True)
    if m.protocol != "5":  # v3.1.1: a clean connect is the only way to drop the session
        c, _ = mqtt_connect(m, cid, clean=True, expiry=0, timeout_s=timeout_s, tls=tls)
        _disconnect(c)
    return Connack(second.session_present, first.session_expiry)


async def _influx_probe(cfg: Config, timeout_s: float) -> str:
    store = make_store(cfg.store.model_copy(update={"timeout_s": timeout_s}))
    line = (f"{PROBE_MEASUREMENT},site={cfg.site},gateway={cfg.gateway.id} "
            f"ok=1i {int(time.time() * 1000)}")
    try:
        await asyncio.wait_for(store.ensure_ready(), timeout_s + 1)
        await asyncio.wait_for(store.write(line.encode(), 1), timeout_s + 1)
    except StoreError as exc:
        raise ProbeError(str(exc)) from None
    except TimeoutError:
        raise ProbeError(f"no answer within {timeout_s:g} s") from None
    finally:
        await store.aclose()
    return f"wrote one {PROBE_MEASUREMENT} point"


def _sqlite_probe(cfg: Config, timeout_s: float) -> str:
    path = cfg.store.path
    if not path.exists():
        parent = next((p for p in path.parents if p.exists()), Path(path.anchor))
        if not os.access(parent, os.W_OK | os.X_OK):
            raise ProbeError(f"{path} does not exist and {parent} is not writable")
        return f"{path} will be created at the first start"
    try:
        db = sqlite3.connect(path, timeout=timeout_s)
        try:
            db.execute("BEGIN IMMEDIATE")  # takes the write lock, writes nothing
            db.execute("ROLLBACK")
        finally:
            db.close()
    except sqlite3.Error as exc:
        raise ProbeError(f"{path}: {exc}") from None
    return f"{path} takes the write lock"


def store_probe(cfg: Config, timeout_s: float) -> str:
    """Reach the store and prove it takes writes; returns what was done."""
    if cfg.store.kind == "sqlite":
        return _sqlite_probe(cfg, timeout_s)
    return asyncio.run(_influx_probe(cfg, timeout_s))


class _Timex(ctypes.Structure):
    """``struct timex`` (adjtimex(2)) up to ``status``, with room for the rest."""

    _fields_ = [("modes", ctypes.c_uint), ("offset", ctypes.c_long), ("freq", ctypes.c_long),
                ("maxerror", ctypes.c_long), ("esterror", ctypes.c_long),
                ("status", ctypes.c_int), ("_rest", ctypes.c_byte * 256)]


TIME_ERROR = 5
STA_UNSYNC = 0x0040


def clock_synchronised() -> tuple[bool, float]:
    """(synchronised, max error in seconds) from the kernel, as timedatectl reads it.

    ``adjtimex`` with ``modes = 0`` only reads, and needs no privilege. NTP
    daemons (systemd-timesyncd, chrony, ntpd) clear ``STA_UNSYNC`` once synced.
    Raises ProbeError where the call is unavailable.
    """
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        tx = _Timex()
        state = libc.adjtimex(ctypes.byref(tx))
    except (OSError, AttributeError) as exc:
        raise ProbeError(f"adjtimex unavailable: {exc}") from None
    if state < 0:
        raise ProbeError(f"adjtimex failed (errno {ctypes.get_errno()})")
    return (state != TIME_ERROR and not tx.status & STA_UNSYNC), tx.maxerror / 1e6
