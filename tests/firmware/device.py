"""A simulated device (the real firmware under `micropython`) and an MQTT observer."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

import firmware
from tests.firmware.conftest import install
from tests.servers import HOST, stop_pid

SITE = "bdnc-lab"
PREFIX = "livinglab/v1"


def device_config(device: str, port: int, **over: Any) -> dict[str, Any]:
    cfg: dict[str, Any] = json.loads(json.dumps(firmware.DEFAULT_DEVICE_CONFIG))
    cfg["device"] = device
    cfg["mqtt"]["port"] = port
    cfg["mqtt"]["keepalive"] = 10
    cfg.update(over)
    return cfg


@dataclass
class Device:
    """One firmware process in its own flash dir; stopped by PID."""

    micropython: str
    flash: Path
    speed: float = 1.0
    heap: str = ""
    proc: subprocess.Popen[bytes] | None = None
    log: Path = field(init=False)
    wrap: tuple[str, ...] = ()  # a command in front, e.g. ("faketime", "-f", "+900d")

    def __post_init__(self) -> None:
        self.log = self.flash / "stderr.log"

    def start(self) -> None:
        env = dict(os.environ, LIVINGLAB_SIM_SPEED=str(self.speed))
        cmd = [*self.wrap, self.micropython] + (["-X", f"heapsize={self.heap}"]
                                                 if self.heap else [])
        with open(self.log, "ab") as err, open(self.flash / "stdout.log", "ab") as out:
            self.proc = subprocess.Popen(cmd + ["main.py"], cwd=self.flash, env=env,
                                         stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                         start_new_session=True)

    def kill(self) -> None:
        """SIGKILL: a power cut. The broker sees the TCP connection drop."""
        if self.proc is not None:  # the whole group: a faketime wrapper and its micropython
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
            self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            stop_pid(self.proc.pid)
            self.proc = None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stderr(self) -> str:
        return self.log.read_text(errors="replace")


def make_device(micropython: str, flash: Path, cfg: dict[str, Any], speed: float = 1.0,
                heap: str = "") -> Device:
    install(flash, cfg)
    return Device(micropython, flash, speed, heap)


@dataclass
class Received:
    topic: str
    payload: bytes
    retain: bool
    at: float

    def json(self) -> Any:
        return json.loads(self.payload)


class Observer:
    """Subscribes to a site with a persistent session, so nothing is missed across a
    broker restart (Mosquitto keeps the session and queued QoS 1 messages)."""

    def __init__(self, port: int, client_id: str = "fw-test-observer") -> None:
        self.port = port
        self.messages: list[Received] = []
        self.lock = threading.Lock()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                                  clean_session=False)
        self.client.on_message = self._on_message
        self.client.on_connect = self._on_connect
        self.client.reconnect_delay_set(1, 1)
        self.subscribed = threading.Event()

    def _on_connect(self, client: mqtt.Client, *_: Any) -> None:
        client.subscribe(f"{PREFIX}/{SITE}/#", qos=1)
        self.subscribed.set()

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.messages.append(Received(msg.topic, bytes(msg.payload), bool(msg.retain),
                                          time.time()))

    def __enter__(self) -> Observer:
        self.client.connect(HOST, self.port, keepalive=5)
        self.client.loop_start()
        if not self.subscribed.wait(10):
            raise TimeoutError("observer did not connect")
        return self

    def __exit__(self, *_: Any) -> None:
        self.client.loop_stop()
        self.client.disconnect()

    def publish(self, topic: str, payload: str, retain: bool = True) -> None:
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(10)

    def of(self, device: str, kind: str) -> list[Received]:
        topic = f"{PREFIX}/{SITE}/{device}/{kind}"
        with self.lock:
            return [m for m in self.messages if m.topic == topic]

    def telemetry(self, device: str) -> list[dict[str, Any]]:
        return [m.json() for m in self.of(device, "telemetry")]
