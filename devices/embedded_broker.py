"""An embedded MQTT 3.1.1 broker (amqtt) so ``livinglab demo`` needs nothing installed.

It runs as its own process (``python -m devices.embedded_broker --port N``) rather
than inside the demo: the demo can then stop it by PID like every other child,
and amqtt's event loop never competes with the live view for the GIL.

amqtt marks every session accepted by its stock anonymous plugin as "anonymous"
and then neither keeps its persistent session nor queues QoS 1 messages for it
while it is away. The demo wants the gateway's persistent session to behave as
on a real broker, so :class:`OpenAuthPlugin` accepts everyone without that mark.
This broker is for a laptop demo on loopback only, never for a real fleet.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from amqtt.broker import Broker
from amqtt.plugins.base import BaseAuthPlugin
from amqtt.session import Session

from devices.fleet_errors import FleetError
from devices.fleet_monitor import free_port, port_open
from devices.fleet_proc import die_with_parent

HOST = "127.0.0.1"


class EmbeddedBrokerError(FleetError):
    """The embedded broker could not start (port busy, amqtt failed)."""


class OpenAuthPlugin(BaseAuthPlugin):  # type: ignore[misc]
    """Accept every client and keep it non-anonymous, so persistent sessions work."""

    @dataclass
    class Config:
        """No options: the embedded broker listens on loopback only."""

    async def authenticate(self, *, session: Session) -> bool | None:
        return True


def broker_config(host: str, port: int) -> dict[str, Any]:
    """amqtt 0.12 config: one TCP listener, open auth, no $SYS chatter, no packet logs."""
    return {
        "listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}", "max_connections": 0}},
        "timeout_disconnect_delay": 0,
        "plugins": {f"{__name__}.OpenAuthPlugin": {}},
    }


async def serve(host: str, port: int) -> None:
    """Run the broker until SIGTERM/SIGINT, then shut it down (bounded to 5 s)."""
    broker = Broker(broker_config(host, port))
    await broker.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"embedded broker listening on {host}:{port}", flush=True)
    await stop.wait()
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(broker.shutdown(), timeout=5)


@dataclass
class EmbeddedBroker:
    """The broker child process: start it, know its port, stop it by PID."""

    log: Path
    host: str = HOST
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 15.0) -> None:
        """Spawn the broker and wait until it accepts connections (bounded)."""
        if not self.port:
            self.port = free_port(self.host)
        elif port_open(self.host, self.port):
            raise EmbeddedBrokerError(
                f"port {self.host}:{self.port} is busy (pick another or stop what uses it)")
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", __name__, "--host", self.host, "--port", str(self.port)],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True, preexec_fn=die_with_parent())
        end = time.monotonic() + timeout
        while not port_open(self.host, self.port):
            if self.proc.poll() is not None or time.monotonic() > end:
                self.stop()
                raise EmbeddedBrokerError(
                    f"embedded MQTT broker did not start on {self.host}:{self.port} "
                    f"(see {self.log})")
            time.sleep(0.05)

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def stop(self, timeout: float = 8.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout``; always reaps the child."""
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Embedded amqtt broker for livinglab demo")
    parser.add_argument("--host", default=HOST)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.ERROR,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    asyncio.run(serve(args.host, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
