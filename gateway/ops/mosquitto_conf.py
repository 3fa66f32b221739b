"""Reading a Mosquitto config the way mosquitto does, for ``livinglab doctor``.

One ``key value`` per line, ``#`` comments, ``include_dir DIR`` pulls in
``DIR/*.conf`` in sorted order at that point (Debian's
``/etc/mosquitto/mosquitto.conf`` ends with ``include_dir
/etc/mosquitto/conf.d``). For the global options the doctor looks at, the last
occurrence wins. Missing keys mean Mosquitto's defaults, listed in
:data:`DEFAULTS` (mosquitto.conf(5), Mosquitto 2.0).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["DEFAULTS", "SYSTEM_CONF", "MosquittoConf", "read_conf"]

SYSTEM_CONF = Path("/etc/mosquitto/mosquitto.conf")
DEFAULTS = {
    "persistence": "false",
    "autosave_interval": "1800",
    "autosave_on_changes": "false",
    "max_queued_messages": "1000",
    "max_queued_bytes": "0",
}
MAX_DEPTH = 8  # include_dir loops


@dataclass
class MosquittoConf:
    """The options found, where each came from, and the files read."""

    values: dict[str, str] = field(default_factory=dict)
    origin: dict[str, str] = field(default_factory=dict)  # key -> "file:line"
    files: list[Path] = field(default_factory=list)
    # every ``listener PORT [ADDRESS]`` line (the one key that may repeat), in order
    listeners: list[str] = field(default_factory=list)

    def network_listeners(self) -> list[str]:
        """Listeners reachable from other hosts: no bind address, or not a loopback one
        (a unix socket, port 0, is local)."""
        out = []
        for value in self.listeners:
            port, _, addr = value.partition(" ")
            addr = addr.strip()
            if port == "0" or addr.startswith(("127.", "localhost")) or addr == "::1":
                continue
            out.append(value)
        return out

    def get(self, key: str) -> str:
        return self.values.get(key, DEFAULTS.get(key, ""))

    def where(self, key: str) -> str:
        return self.origin.get(key, "default")

    def flag(self, key: str) -> bool:
        return self.get(key).lower() in ("true", "1", "yes", "on")

    def number(self, key: str) -> int | None:
        try:
            return int(self.get(key))
        except ValueError:
            return None


def read_conf(path: Path, conf: MosquittoConf | None = None, depth: int = 0) -> MosquittoConf:
    """Parse ``path`` and its ``include_dir`` files; raises OSError if ``path`` is unreadable."""
    conf = MosquittoConf() if conf is None else conf
    conf.files.append(path)
    for n, raw in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, _, value = line.partition(" ")
        value = value.strip()
        if key == "include_dir" and value and depth < MAX_DEPTH:
            inc = Path(value)
            if inc.is_dir():
                for f in sorted(inc.glob("*.conf")):
                    read_conf(f, conf, depth + 1)
            continue
        if key == "listener":
            conf.listeners.append(value)
        conf.values[key] = value
        conf.origin[key] = f"{path}:{n}"
    return conf
