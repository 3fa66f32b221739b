"""``livinglab doctor``: is this host ready to run a gateway unattended?

Each check is a small function ``check(host) -> Finding | None`` in
:data:`CHECKS`; a new check (TLS certificate expiry, ...) is one function
appended there. ``None`` means "not applicable" (e.g. the config did not
load, so nothing else can be checked). A finding prints as one line::

    ok   <what>
    warn <what> (<fix>)
    fail <what> (<fix>)

``fail`` is what will lose readings or stop the gateway; ``warn`` is a risk
(e.g. Mosquitto at its lossy defaults). The command exits 1 if any check
fails. Everything the checks write is listed in docs/pi.md ("doctor").
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from gateway.errors import ConfigError
from gateway.ops.mosquitto_conf import SYSTEM_CONF, MosquittoConf, read_conf
from protocols.config import Config, load_config

__all__ = ["CHECKS", "Finding", "Host", "run_checks"]

Level = Literal["ok", "warn", "fail"]
MIB = 1024 * 1024
MIN_FREE = 16 * MIB        # below this the buffer cannot take a burst: fail
AUTOSAVE_MAX_S = 300       # a broker crash loses at most this much of its queue
QUEUE_DEFAULT = 1000       # Mosquitto's max_queued_messages default


@dataclass(frozen=True)
class Finding:
    level: Level
    what: str
    fix: str = ""

    def line(self) -> str:
        fix = f" ({self.fix})" if self.fix and self.level != "ok" else ""
        return f"{self.level} {self.what}{fix}"


@dataclass
class Host:
    """What the checks look at: the config (if it loaded) and the doctor's options."""

    config_path: Path
    mosquitto_conf: Path | None = None
    timeout_s: float = 5.0
    cfg: Config | None = None
    config_error: str = ""
    facts: dict[str, Any] = field(default_factory=dict)  # results later checks reuse

    @classmethod
    def load(cls, config_path: Path, mosquitto_conf: Path | None = None,
             timeout_s: float = 5.0) -> Host:
        host = cls(config_path, mosquitto_conf, timeout_s)
        try:
            host.cfg = load_config(config_path)
        except ConfigError as exc:
            host.config_error = str(exc)
        return host


Check = Callable[[Host], "Finding | None"]


# -- config and disk -------------------------------------------------------------------

def check_config(host: Host) -> Finding:
    if host.cfg is None:
        return Finding("fail", f"config {host.config_path}: {host.config_error}",
                       "fix the file; docs/configuration.md lists every key")
    c = host.cfg
    return Finding("ok", f"config {host.config_path} (site {c.site}, gateway {c.gateway.id}, "
                         f"store {c.store.kind})")


def _existing(path: Path) -> Path:
    return next((p for p in (path, *path.parents) if p.exists()), Path(path.anchor))


def check_data_dir(host: Host) -> Finding | None:
    if host.cfg is None:
        return None
    d = host.cfg.gateway.data_dir
    if not d.exists():
        base = _existing(d)
        if os.access(base, os.W_OK | os.X_OK):
            return Finding("ok", f"data_dir {d} will be created at the first start")
        return Finding("fail", f"data_dir {d} does not exist and {base} is not writable",
                       f"sudo mkdir -p {d} && sudo chown <service user> {d}")
    try:  # a real write + fsync, not just the permission bits (read-only mounts, full disks)
        with tempfile.NamedTemporaryFile(dir=d, prefix=".doctor-") as f:
            f.write(b"livinglab doctor\n")
            f.flush()
            os.fsync(f.fileno())
    except OSError as exc:
        return Finding("fail", f"data_dir {d} is not writable: {exc.strerror or exc}",
                       "run doctor as the service user; chown the directory to it")
    return Finding("ok", f"data_dir {d} is writable")


def space_finding(data_dir: Path, free: int, buffer_now: int, buffer_max: int) -> Finding:
    """Pure: can the buffer grow to ``buffer_max_bytes`` on this file system?"""
    room = free + buffer_now
    what = (f"disk: {free // MIB} MiB free for data_dir {data_dir}, buffer may grow to "
            f"{buffer_max // MIB} MiB")
    if free < MIN_FREE:
        return Finding("fail", what, "free space on the card, or move data_dir")
    if room < buffer_max:
        return Finding("warn", what, f"set [gateway] buffer_max_bytes below {room} "
                                     "or free space: a full disk stops acknowledging early")
    return Finding("ok", what)


def check_disk_space(host: Host) -> Finding | None:
    if host.cfg is None:
        return None
    g = host.cfg.gateway
    buffer_now = sum(p.stat().st_size for p in g.data_dir.glob("buffer.sqlite*") if p.is_file())
    free = shutil.disk_usage(_existing(g.data_dir)).free
    return space_finding(g.data_dir, free, buffer_now, g.buffer_max_bytes)


# -- broker --------------------------------------------------------------------------

def check_serial_ids(host: Host) -> Finding | None:
    """A serial port without ``[gateway.serial_ids]`` may speak for any device id: a
    board plugged into the gateway could write as another device (issue 15)."""
    if host.cfg is None:
        return None
    g = host.cfg.gateway
    if not g.serial_ports and not g.serial_ids:
        return None
    open_ = [p for p in g.serial_ports if p not in g.serial_ids]
    if open_:
        return Finding("warn", f"serial port {', '.join(open_)} may speak for any device id",
                       f'map it in [gateway.serial_ids]: "{open_[0]}" = ["DEVICE-ID"]')
    unread = [p for p in g.serial_ids if p not in g.serial_ports]
    if unread:
        return Finding("warn", f"[gateway.serial_ids] maps {', '.join(unread)}, which the "
                       "gateway does not read", "add it to [gateway] serial_ports")
    return Finding("ok", "serial ports mapped to their device ids: " + "; ".join(
        f"{p} -> {', '.join(g.serial_ids[p]) or 'none'}" for p in g.serial_ports))


def check_broker(host: Host) -> Finding | None:
    if host.cfg is None:
        return None
    from gateway.ops.doctor_probes import ProbeError, broker_login

    m = host.cfg.mqtt
    login = f"user {m.username}" if m.username else "anonymous"
    tls = " over TLS" if host.cfg.mqtt_tls or m.cert_file else ""
    try:
        broker_login(host.cfg, host.timeout_s)
    except ProbeError as exc:
        host.facts["broker"] = False
        return Finding("fail", f"broker {m.host}:{m.port} ({login}{tls}): {exc}",
                       "is mosquitto running? check [mqtt] host/port/username/password")
    host.facts["broker"] = True
    return Finding("ok", f"broker {m.host}:{m.port} accepts the gateway's login ({login}{tls})")


def session_finding(present: bool, granted: int | None, wanted: int) -> Finding:
    """Pure: what the reconnect said about the broker keeping the gateway's session."""
    if not present:
        return Finding("fail", "broker forgot the session across a reconnect: messages sent "
                               "while the gateway reconnects are lost",
                       "use Mosquitto with persistent_client_expiration unset or long")
    if granted is not None and granted < wanted:
        return Finding("warn", f"broker keeps the session only {granted} s (the gateway asks "
                               f"for {wanted} s)", "raise the broker's session expiry limit, "
                                                   "or lower [mqtt] session_expiry_s")
    return Finding("ok", "broker keeps the gateway's session across a reconnect")


def check_session(host: Host) -> Finding | None:
    if host.cfg is None or not host.facts.get("broker"):
        return None
    from gateway.ops.doctor_probes import ProbeError, session_kept

    try:
        ack = session_kept(host.cfg, host.timeout_s)
    except ProbeError as exc:
        return Finding("fail", f"broker session check: {exc}", "see the broker's log")
    return session_finding(ack.session_present, ack.session_expiry, host.cfg.mqtt.session_expiry_s)


def _loopback(name: str) -> bool:
    return name in ("localhost", "::1") or name.startswith("127.")


def check_anonymous(host: Host) -> Finding | None:
    """Anonymous clients over a listener other hosts reach: anyone on the network may
    publish readings for any device and read the site. A fail, not a warning."""
    if host.cfg is None or not host.facts.get("broker"):
        return None
    from gateway.ops.doctor_probes import ProbeError, anonymous_accepted

    m = host.cfg.mqtt
    fix = ("set allow_anonymous false with a password_file (gateway/ops/mosquitto.conf, "
           "livinglab broker sync)")
    try:
        accepted = anonymous_accepted(host.cfg, host.timeout_s)
    except ProbeError as exc:
        return Finding("warn", f"broker anonymous check: {exc}", "see the broker's log")
    if not accepted:
        return Finding("ok", "broker refuses anonymous clients")
    if not _loopback(m.host):
        return Finding("fail", f"broker {m.host}:{m.port} accepts anonymous clients on a "
                               "network listener", fix)
    conf = _mosquitto_conf(host)
    if isinstance(conf, MosquittoConf) and conf.flag("allow_anonymous") \
            and conf.network_listeners():
        return Finding("fail", "mosquitto allows anonymous clients and listens on the "
                               f"network (listener {conf.network_listeners()[0]}, "
                               f"{conf.where('allow_anonymous')})", fix)
    return Finding("ok", "broker accepts anonymous clients on loopback only")


# -- the local Mosquitto config -------------------------------------------------------

def _local(name: str) -> bool:
    if name in ("localhost", "::1") or name.startswith("127."):
        return True
    return name in (socket.gethostname(), socket.getfqdn())


def _mosquitto_conf(host: Host) -> MosquittoConf | Finding | None:
    """The parsed config, a finding saying why there is none, or None (checked already)."""
    if "mosquitto_conf" in host.facts:
        cached: MosquittoConf | None = host.facts["mosquitto_conf"]
        return cached
    host.facts["mosquitto_conf"] = None
    path = host.mosquitto_conf
    if path is None:
        if host.cfg is not None and not _local(host.cfg.mqtt.host):
            return Finding("ok", f"mosquitto config not checked: the broker {host.cfg.mqtt.host} "
                                 "is another host (run doctor there, or pass --mosquitto-conf)")
        if not SYSTEM_CONF.exists():
            return Finding("warn", f"mosquitto config not found at {SYSTEM_CONF}",
                           "pass --mosquitto-conf FILE to check the broker's config")
        path = SYSTEM_CONF
    try:
        conf = read_conf(path)
    except OSError as exc:
        return Finding("fail" if host.mosquitto_conf else "warn",
                       f"mosquitto config {path}: {exc.strerror or exc}",
                       "pass --mosquitto-conf FILE, readable by this user")
    host.facts["mosquitto_conf"] = conf
    return conf


def check_mosquitto_persistence(host: Host) -> Finding | None:
    conf = _mosquitto_conf(host)
    if not isinstance(conf, MosquittoConf):
        return conf
    where = f"({conf.where('persistence')})"
    if not conf.flag("persistence"):
        return Finding("warn", f"mosquitto persistence is off {where}: a broker restart loses "
                               "every message queued for the gateway",
                       "install gateway/ops/mosquitto.conf as /etc/mosquitto/conf.d/livinglab.conf")
    return Finding("ok", f"mosquitto persistence is on {where}")


def check_mosquitto_autosave(host: Host) -> Finding | None:
    conf = _mosquitto_conf(host)
    if not isinstance(conf, MosquittoConf):
        return None
    n = conf.number("autosave_interval")
    where = f"({conf.where('autosave_interval')})"
    if conf.flag("autosave_on_changes") and n:
        return Finding("ok", f"mosquitto autosaves every {n} changes {where}")
    if n is None or n == 0 or n > AUTOSAVE_MAX_S:
        return Finding("warn", f"mosquitto autosave_interval is {conf.get('autosave_interval')} "
                               f"{where}: a broker crash loses up to that many seconds of queue",
                       f"set autosave_interval 60, at most {AUTOSAVE_MAX_S}")
    return Finding("ok", f"mosquitto autosaves every {n} s {where}")


def check_mosquitto_queue(host: Host) -> Finding | None:
    conf = _mosquitto_conf(host)
    if not isinstance(conf, MosquittoConf):
        return None
    n = conf.number("max_queued_messages")
    where = f"({conf.where('max_queued_messages')})"
    if n is None or 0 < n <= QUEUE_DEFAULT:
        return Finding("warn", f"mosquitto max_queued_messages is {conf.get('max_queued_messages')}"
                               f" {where}: while the gateway is away the broker drops the rest",
                       "set max_queued_messages 200000 and max_queued_bytes as "
                       "gateway/ops/mosquitto.conf does")
    return Finding("ok", f"mosquitto queues {'unlimited' if n == 0 else n} messages per "
                         f"session {where}")


# -- store and clock ------------------------------------------------------------------

def check_store(host: Host) -> Finding | None:
    if host.cfg is None:
        return None
    from gateway.ops.doctor_probes import ProbeError, store_probe

    s = host.cfg.store
    target = str(s.path) if s.kind == "sqlite" else s.url
    try:
        done = store_probe(host.cfg, host.timeout_s)
    except ProbeError as exc:
        return Finding("fail", f"store {s.kind} at {target}: {exc}",
                       "start the store; check [store] url and credentials")
    return Finding("ok", f"store {s.kind} reachable and writable ({done})")


def check_clock(host: Host) -> Finding:
    from gateway.ops.doctor_probes import ProbeError, clock_synchronised

    try:
        synced, maxerror = clock_synchronised()
    except ProbeError as exc:
        synced, maxerror = False, -1.0
        if not Path("/run/systemd/timesync/synchronized").exists():
            return Finding("warn", f"clock synchronisation unknown: {exc}",
                           "check `timedatectl`; enable systemd-timesyncd or chrony")
    if synced or Path("/run/systemd/timesync/synchronized").exists():
        return Finding("ok", "clock synchronised" + (f" (max error {maxerror:.3f} s)"
                                                     if maxerror >= 0 else ""))
    return Finding("warn", "clock not synchronised: the gateway's receive times and status "
                           "ages are off", "sudo timedatectl set-ntp true; NTP needs the network")


def check_certificates(host: Host) -> Finding | None:
    """Expiry of the certificates this host relies on: the CA the gateway checks the
    broker against, the CA for an https store, and the broker certificate that
    ``livinglab broker certs`` made here (a device refuses the broker once it expires)."""
    if host.cfg is None:
        return None
    from gateway.ops.certcheck import cert_expiry_check

    paths: list[Path] = []
    if host.cfg.mqtt_ca_file is not None:
        paths.append(host.cfg.mqtt_ca_file)
    if host.cfg.store.ca_file is not None:
        paths.append(host.cfg.store.ca_file)
    server = host.cfg.gateway.data_dir / "broker" / "tls" / "server.crt"
    if server.exists():
        paths.append(server)
    if not paths:
        return None
    findings = [Finding(*cert_expiry_check(p)) for p in dict.fromkeys(paths)]
    order = {"fail": 2, "warn": 1, "ok": 0}
    worst = max(findings, key=lambda f: order[f.level])
    if worst.level == "ok":
        return Finding("ok", "; ".join(f.what for f in findings))
    return worst


CHECKS: list[Check] = [
    check_config,
    check_data_dir,
    check_disk_space,
    check_serial_ids,
    check_broker,
    check_session,
    check_mosquitto_persistence,
    check_mosquitto_autosave,
    check_mosquitto_queue,
    check_anonymous,  # after them: they report a missing mosquitto config once
    check_store,
    check_certificates,
    check_clock,
]


def run_checks(host: Host, checks: Sequence[Check] = CHECKS) -> list[Finding]:
    return [f for f in (check(host) for check in checks) if f is not None]
