"""Real servers for tests and benchmarks: Mosquitto, influxd (v1), VictoriaMetrics.

The centre's extra servers (vmagent with two VictoriaMetrics nodes, Alertmanager) are
in :mod:`tests.servers_centre`.

Each runs on a free 127.0.0.1 port in its own temp dir and is stopped by PID.
Nothing here sleeps where a condition can be waited for; every wait is bounded.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

HOST = "127.0.0.1"
T = TypeVar("T")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def wait_for(cond: Callable[[], T], timeout: float = 20.0, interval: float = 0.05,
             what: str = "condition") -> T:
    """Poll ``cond`` until it returns a truthy value; raise TimeoutError after ``timeout``."""
    end = time.monotonic() + timeout
    last: T = cond()
    while not last:
        if time.monotonic() > end:
            raise TimeoutError(f"{what} not met within {timeout}s (last: {last!r})")
        time.sleep(interval)
        last = cond()
    return last


def tcp_open(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.5):
            return True
    except OSError:
        return False


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as r:
            return bool(200 <= r.status < 300)
    except (urllib.error.URLError, OSError):
        return False


def die_with_parent() -> None:
    """In the child before exec: SIGKILL it when the test process dies.

    A test runner killed by a timeout must not leave servers holding ports. The
    kernel ties this to the *thread* that forked, so :meth:`Server.start` uses it
    only from the main thread (a server started from a worker thread would die
    with that thread).
    """
    try:
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _send(pid: int, sig: int) -> bool:
    """``sig`` to ``pid``'s process group when it leads one (every server and device here
    starts with ``start_new_session``: a wrapper such as ``faketime`` and its child are
    one group), else to ``pid``; False when nothing is left to signal."""
    try:
        os.killpg(pid, sig)
        return True
    except ProcessLookupError:
        pass
    except PermissionError:
        return False
    try:
        os.kill(pid, sig)
        return True
    except ProcessLookupError:
        return False


def _gone(pid: int) -> bool:
    """The process is reaped (or not our child and dead) and no process of its group is
    left."""
    try:
        if os.waitpid(pid, os.WNOHANG)[0] != pid:
            return False
    except ChildProcessError:
        try:
            os.kill(pid, 0)
            return False
        except ProcessLookupError:
            pass
    try:
        os.killpg(pid, 0)
        return False
    except (ProcessLookupError, PermissionError):
        return True


def stop_pid(pid: int, timeout: float = 10.0) -> None:
    """SIGTERM to the process and its group, wait (reaping it if it is our child), SIGKILL
    to the group after ``timeout``: no orphaned child (a device under ``faketime``)."""
    for sig in (signal.SIGCONT, signal.SIGTERM):
        if not _send(pid, sig):
            return
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if _gone(pid):
            return
        time.sleep(0.05)
    _send(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)
    end = time.monotonic() + 5
    while not _gone(pid) and time.monotonic() < end:
        time.sleep(0.05)


S = TypeVar("S", bound="Server")


@contextmanager
def running(server: S) -> Iterator[S]:
    """Start ``server``, hand it out, stop it by PID whatever happens."""
    server.start()
    try:
        yield server
    finally:
        server.stop()


@dataclass
class Server:
    """One server process in its own directory."""

    dir: Path
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.log = self.dir / "server.log"

    def command(self) -> list[str]:
        raise NotImplementedError

    def ready(self) -> bool:
        return tcp_open(self.port)

    def start(self, timeout: float = 30.0) -> None:
        if not self.port:
            self.port = free_port()
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(self.command(), stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, cwd=self.dir,
                                         start_new_session=True,
                                         preexec_fn=die_with_parent
                                         if threading.current_thread() is threading.main_thread()
                                         else None)
        wait_for(self.ready, timeout, what=f"{type(self).__name__} on port {self.port}")

    def stop(self) -> None:
        if self.proc is not None:
            stop_pid(self.proc.pid)
            self.proc = None

    def kill(self) -> None:
        if self.proc is not None:
            _send(self.proc.pid, signal.SIGKILL)  # its whole group (start_new_session)
            self.proc.wait(10)
            self.proc = None

    def pause(self) -> None:
        """SIGSTOP: the process keeps its sockets but answers nothing (an outage)."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGCONT)

    def restart(self) -> None:
        self.stop()
        self.start()

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"


@dataclass
class Mosquitto(Server):
    """Mosquitto with persistence and limits sized for a gateway that may be down.

    ``extra`` lines are appended to the generated config (ACL, password file, ...).
    """

    extra: tuple[str, ...] = ()
    persistence: bool = True
    allow_anonymous: bool = True
    # True: Mosquitto at its shipped defaults (no persistence, autosave 1800 s, a
    # 1000-message queue), only a loopback listener; what `livinglab doctor` warns about.
    defaults: bool = False
    # (cafile, certfile, keyfile): the only listener is TLS (no plain-text port at all)
    tls: tuple[Path, Path, Path] | None = None

    def __post_init__(self) -> None:
        super().__post_init__()

    def command(self) -> list[str]:
        conf = self.dir / "mosquitto.conf"
        if self.defaults:
            conf.write_text(f"listener {self.port} {HOST}\nallow_anonymous true\n"
                            + "".join(f"{line}\n" for line in self.extra))
            return [shutil.which("mosquitto") or "/usr/sbin/mosquitto", "-c", str(conf)]
        tls = [] if self.tls is None else [
            f"cafile {self.tls[0]}", f"certfile {self.tls[1]}", f"keyfile {self.tls[2]}",
            "tls_version tlsv1.2"]
        lines = [
            f"listener {self.port} {HOST}",
            *tls,
            f"allow_anonymous {'true' if self.allow_anonymous else 'false'}",
            f"persistence {'true' if self.persistence else 'false'}",
            f"persistence_location {self.dir}/",
            # Started as root, mosquitto drops to the 'mosquitto' user, which cannot
            # enter pytest's 0700 temp dirs: persistence would fail silently and a
            # restart would lose sessions. Tests stay root instead.
            *(["user root"] if os.geteuid() == 0 else []),
            "autosave_interval 1",
            "max_queued_messages 0",
            "max_queued_bytes 0",
            "max_inflight_messages 0",
            "sys_interval 1",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            "log_type notice",
            *self.extra,
        ]
        conf.write_text("\n".join(lines) + "\n")
        return [shutil.which("mosquitto") or "/usr/sbin/mosquitto", "-c", str(conf)]


@dataclass
class Influxd(Server):
    """InfluxDB 1.x (Debian's ``influxd``), v1 HTTP API on loopback."""

    rpc_port: int = 0
    # (certfile, keyfile, CA file): serve https only, on the host name "localhost"
    tls: tuple[Path, Path, Path] | None = None

    @property
    def url(self) -> str:
        return f"https://localhost:{self.port}" if self.tls else f"http://{HOST}:{self.port}"

    def _context(self) -> ssl.SSLContext | None:
        return ssl.create_default_context(cafile=str(self.tls[2])) if self.tls else None

    def command(self) -> list[str]:
        if not self.rpc_port:
            self.rpc_port = free_port()
        conf = self.dir / "influxdb.conf"
        conf.write_text(f"""\
reporting-enabled = false
bind-address = "{HOST}:{self.rpc_port}"
[meta]
  dir = "{self.dir}/meta"
[data]
  dir = "{self.dir}/data"
  wal-dir = "{self.dir}/wal"
  query-log-enabled = false
[monitor]
  store-enabled = false
[http]
  enabled = true
  bind-address = "{HOST}:{self.port}"
  log-enabled = false
""" + ("" if self.tls is None else f"""\
  https-enabled = true
  https-certificate = "{self.tls[0]}"
  https-private-key = "{self.tls[1]}"
"""))
        return ["influxd", "run", "-config", str(conf)]

    def ready(self) -> bool:
        if self.tls is not None:
            return tcp_open(self.port)
        return http_ok(f"{self.url}/ping")

    def query(self, q: str, db: str | None = None) -> dict[str, object]:
        params = {"q": q, "epoch": "ms"}
        if db:
            params["db"] = db
        data = urllib.parse.urlencode(params).encode()
        req = urllib.request.Request(f"{self.url}/query", data=data, method="POST")
        with urllib.request.urlopen(req, timeout=30, context=self._context()) as r:
            result: dict[str, object] = json.loads(r.read())
            return result

    def points(self, db: str, measurement: str) -> list[dict[str, object]]:
        """Every point of a measurement as {column: value} dicts (time in ms)."""
        res = self.query(f'SELECT * FROM "{measurement}"', db)
        out: list[dict[str, object]] = []
        for result in res.get("results", []):  # type: ignore[attr-defined]
            for series in result.get("series", []) or []:
                cols = series["columns"]
                out.extend(dict(zip(cols, row, strict=True)) for row in series["values"])
        return out


@dataclass
class VictoriaMetrics(Server):
    """VictoriaMetrics single node: accepts the InfluxDB v1 and v2 write APIs.

    Started with ``-dedup.minScrapeInterval=1ms`` as the wire contract says, so a
    point written twice (same series, same ms) is kept once, like InfluxDB.
    """

    # (certfile, keyfile, CA file): serve https only, on the host name "localhost"
    tls: tuple[Path, Path, Path] | None = None

    @property
    def url(self) -> str:
        return f"https://localhost:{self.port}" if self.tls else f"http://{HOST}:{self.port}"

    def _context(self) -> ssl.SSLContext | None:
        return ssl.create_default_context(cafile=str(self.tls[2])) if self.tls else None

    def command(self) -> list[str]:
        tls = [] if self.tls is None else [
            "-tls", f"-tlsCertFile={self.tls[0]}", f"-tlsKeyFile={self.tls[1]}"]
        return ["victoria-metrics", f"-storageDataPath={self.dir}/data",
                f"-httpListenAddr={HOST}:{self.port}", "-retentionPeriod=100y",
                "-search.latencyOffset=0s", "-search.disableCache",
                "-dedup.minScrapeInterval=1ms", "-loggerLevel=WARN", *tls]

    def ready(self) -> bool:
        if self.tls is not None:
            return tcp_open(self.port)
        return http_ok(f"{self.url}/health")

    def flush(self) -> None:
        with urllib.request.urlopen(f"{self.url}/internal/force_flush", timeout=30,
                                    context=self._context()):
            pass

    def export(self, match: str = '{__name__=~".+"}') -> list[dict[str, object]]:
        """All raw samples (``/api/v1/export``), one dict per series."""
        self.flush()
        q = urllib.parse.urlencode({"match[]": match})
        with urllib.request.urlopen(f"{self.url}/api/v1/export?{q}", timeout=30,
                                    context=self._context()) as r:
            return [json.loads(line) for line in r.read().splitlines() if line.strip()]
