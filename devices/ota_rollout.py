"""Rolling a firmware version out to devices, a wave at a time.

The packs are served over plain HTTP from this host (every byte is checked on the
device against the HMAC-authenticated manifest, so no second TLS session is
needed on a board); the control messages go over MQTT with the gateway's login,
the only account the broker ACL lets write ``.../{device}/update``. Progress is
read from each device's retained status (``fw``, ``update``: wire contract,
"Status additions").
"""

from __future__ import annotations

import functools
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from protocols.jsonstrict import JsonError, loads_strict

from .ota_pack import BoardPack, OtaError, control_message

FINAL = ("confirmed", "refused", "rolled_back")


@dataclass(frozen=True)
class Target:
    device: str
    board: str
    key: str | None  # hex; None: the device was never given one


@dataclass(frozen=True)
class Outcome:
    device: str
    ok: bool
    text: str  # one line for a person


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 -- stdlib name
        pass


class PackServer:
    """The pack folder over HTTP in a background thread; stopped in ``close``."""

    def __init__(self, folder: Path, bind: str, port: int, advertise: str) -> None:
        handler = functools.partial(_Quiet, directory=str(folder))
        try:
            self.httpd = ThreadingHTTPServer((bind, port), handler)
        except OSError as exc:
            raise OtaError(f"cannot serve the update on {bind}:{port}: {exc.strerror or exc} "
                           "(set [fleet] ota_http_host/ota_http_port to a free address)"
                           ) from None
        self.url = f"http://{advertise}:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


class Broker:
    """One MQTT session: every device status of the site, and publishing updates."""

    def __init__(self, host: str, port: int, username: str, password: str,
                 prefix: str, site: str, tls: ssl.SSLContext | None = None) -> None:
        self.prefix, self.site = prefix, site
        self.where = f"{host}:{port}"
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2)
        if username:
            self.client.username_pw_set(username, password)
        if tls is not None:  # protocols.mqtt_tls.client_tls(cfg): the one MQTT TLS setup
            self.client.tls_set_context(tls)
        self.cond = threading.Condition()
        # device -> [(received at, live (not a retained copy), payload)]
        self.status: dict[str, list[tuple[float, bool, dict[str, Any]]]] = {}
        self.skipped = 0  # statuses that were not strict JSON
        self._connected = threading.Event()
        self._refused = ""
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        try:
            self.client.connect(host, port, keepalive=30)
        except OSError as exc:
            raise OtaError(f"broker {self.where} unreachable: {exc.strerror or exc} "
                           "(check [mqtt] host/port and that the broker runs)") from None
        self.client.loop_start()
        if not self._connected.wait(10) or self._refused:
            self.close()
            raise OtaError(f"broker {self.where} refused or did not answer "
                           f"{self._refused} (check [mqtt] username/password)")

    def _on_connect(self, client: mqtt.Client, _u: object, _f: object, rc: ReasonCode,
                    _p: object = None) -> None:
        if rc.is_failure:
            self._refused = str(rc)
        else:
            client.subscribe(f"{self.prefix}/{self.site}/+/status", qos=1)
        self._connected.set()

    def _on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        device = msg.topic.split("/")[-2]
        try:  # a hostile retained status is skipped and counted, never fatal to the thread
            payload = loads_strict(bytes(msg.payload))
        except JsonError:
            with self.cond:
                self.skipped += 1
            return
        if isinstance(payload, dict) and device != "_gateway":
            with self.cond:
                self.status.setdefault(device, []).append(
                    (time.monotonic(), not msg.retain, payload))
                self.cond.notify_all()

    def latest(self, device: str, since: float = 0.0) -> dict[str, Any] | None:
        with self.cond:
            seen = [p for t, _, p in self.status.get(device, []) if t >= since]
        return seen[-1] if seen else None

    def seen_devices(self, settle_s: float = 1.5) -> list[str]:
        """Devices with a (retained) status, after letting the retained ones arrive."""
        time.sleep(settle_s)
        with self.cond:
            return sorted(self.status)

    def publish_update(self, device: str, payload: bytes) -> None:
        info = self.client.publish(f"{self.prefix}/{self.site}/{device}/update", payload,
                                   qos=1, retain=False)
        info.wait_for_publish(10)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def _verdict(version: str, status: dict[str, Any] | None) -> Outcome | None:
    """A final outcome from one status message, or None while the update is under way."""
    if status is None:
        return None
    update = status.get("update")
    if not isinstance(update, dict) or update.get("version") != version:
        return None
    state = update.get("state")
    reason = update.get("reason", "")
    if state == "confirmed" and status.get("fw") == version:
        return Outcome("", True, f"ok {version} confirmed (boot {status.get('boot', '?')})")
    if state in ("refused", "rolled_back"):
        return Outcome("", False, f"{state} {version}: {reason} "
                                  f"(running {status.get('fw', '?')})")
    return None


def update_one_wave(broker: Broker, wave: Sequence[Target], version: str,
                    packs: dict[str, BoardPack], base_url: str,
                    timeout_s: float) -> list[Outcome]:
    """Send the update to every device of the wave, wait until each has an outcome."""
    results: dict[str, Outcome] = {}
    sent_at: dict[str, float] = {}
    for t in wave:
        status = broker.latest(t.device)
        if status is None:
            results[t.device] = Outcome(t.device, False, "no status on the broker "
                                        "(never seen: is it provisioned and online?)")
        elif status.get("fw") == version:
            results[t.device] = Outcome(t.device, True, f"ok {version} already running")
        elif status.get("state") != "online":
            results[t.device] = Outcome(t.device, False, "offline (power it up and rerun)")
        elif t.key is None:
            results[t.device] = Outcome(t.device, False, "no update key in the secrets store "
                                        "(re-flash it: livinglab device flash ...)")
        elif t.board not in packs:
            results[t.device] = Outcome(t.device, False, f"board {t.board!r} has no pack")
        else:
            sent_at[t.device] = time.monotonic()
            url = f"{base_url}{version}/{t.board}/"
            broker.publish_update(t.device, control_message(version, url, t.key,
                                                            packs[t.board].manifest))
    deadline = time.monotonic() + timeout_s
    with broker.cond:
        while True:
            for device, since in sent_at.items():
                if device in results:
                    continue
                # This attempt starts with a live "downloading" for V; only what follows it
                # counts (a periodic status may repeat an older outcome for V before it).
                got = [p for t, live, p in broker.status.get(device, []) if live and t >= since]
                begun = False
                for status in got:
                    update = status.get("update") or {}
                    if update.get("version") == version and update.get("state") == "downloading":
                        begun = True
                    v = _verdict(version, status) if begun else None
                    if v is not None:
                        results[device] = Outcome(device, v.ok, v.text)
                        break
            left = deadline - time.monotonic()
            if len(results) == len(wave) or left <= 0:
                break
            broker.cond.wait(min(left, 0.5))
    for device in sent_at:
        if device not in results:
            last = broker.latest(device, sent_at[device]) or {}
            state = (last.get("update") or {}).get("state", "no answer")
            results[device] = Outcome(device, False, f"no confirmation within {timeout_s:g} s "
                                                     f"(last: {state})")
    return [results[t.device] for t in wave]


def rollout(broker: Broker, targets: Sequence[Target], version: str,
            packs: dict[str, BoardPack], base_url: str, wave_size: int, timeout_s: float,
            emit: Callable[[Outcome], None]) -> list[Outcome]:
    """Waves of ``wave_size``; stops after the first wave in which a device failed."""
    out: list[Outcome] = []
    for i in range(0, len(targets), wave_size):
        wave = targets[i:i + wave_size]
        if any(not o.ok for o in out):
            for t in wave:
                o = Outcome(t.device, False, "skipped (rollout stopped)")
                out.append(o)
                emit(o)
            continue
        for o in update_one_wave(broker, wave, version, packs, base_url, timeout_s):
            out.append(o)
            emit(o)
    return out
