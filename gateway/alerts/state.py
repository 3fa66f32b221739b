"""What ``livinglab alerts`` remembers: the alerts firing, those resolved but not yet
delivered, and the rules' memory. Pure transitions, plus an atomic file.

A restart must neither re-fire (the same ``startsAt`` goes out again) nor forget
(a resolution that Alertmanager has not taken yet is still sent). So the state
file (``[alerts] state_file``, default ``<data_dir>/alerts.json``) is written
after every cycle by write-to-temp, fsync, rename: a power cut leaves the old
file or the new one, never half of one. ``--once`` reads it and never writes it.

The payload is Alertmanager's API v2 alert (interfaces.md): a firing alert is
re-sent every cycle with the same labels and ``startsAt`` and ``endsAt`` = now +
4 x ``interval_s`` (if we die, Alertmanager resolves it by itself); a resolved
one is sent once more with ``endsAt`` = the time it resolved, and kept in the
outbox until Alertmanager has taken it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .errors import StateFileError
from .model import Alert, Memory, alert_key

__all__ = ["STATE_VERSION", "AlertState", "Tracked", "advance", "delivered", "load_state",
           "payloads", "rfc3339", "save_state"]

STATE_VERSION = 1
#: A firing alert's endsAt is this many intervals ahead (interfaces.md).
ENDS_AFTER_INTERVALS = 4


@dataclass(frozen=True)
class Tracked:
    """One alert as sent: ``ends_ms`` is None while it fires."""

    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    starts_ms: int
    ends_ms: int | None = None


@dataclass(frozen=True)
class AlertState:
    active: Mapping[str, Tracked] = field(default_factory=dict)
    #: resolved alerts Alertmanager has not taken yet, by key
    outbox: Mapping[str, Tracked] = field(default_factory=dict)
    memory: Memory = Memory()

    @property
    def active_keys(self) -> frozenset[str]:
        return frozenset(self.active)


def advance(prev: AlertState, firing: Sequence[Alert], memory: Memory,
            now_ms: int) -> AlertState:
    """The state after a cycle that found ``firing``: an alert already active keeps its
    ``startsAt``; a new one starts when its data says (never in the future); one no
    longer firing moves to the outbox with ``endsAt`` = now."""
    active: dict[str, Tracked] = {}
    for a in firing:
        old = prev.active.get(a.key)
        if old is not None:
            starts = old.starts_ms
        else:
            starts = min(a.since_ms, now_ms) if a.since_ms is not None else now_ms
        active[a.key] = Tracked(dict(a.labels), a.annotations, starts)
    outbox = dict(prev.outbox)
    for key, old in prev.active.items():
        if key not in active:
            outbox[key] = replace(old, ends_ms=now_ms)
    return AlertState(active, outbox, memory)


def delivered(state: AlertState) -> AlertState:
    """Alertmanager took everything: the resolutions leave the outbox."""
    return replace(state, outbox={})


def rfc3339(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat(
        timespec="milliseconds").replace("+00:00", "Z")


def payloads(state: AlertState, now_ms: int, interval_s: float) -> list[dict[str, Any]]:
    """The POST /api/v2/alerts body: resolutions first (an alert that resolved and fired
    again goes out as the old episode ended, then the new one), then the firing ones."""
    ends = now_ms + int(ENDS_AFTER_INTERVALS * interval_s * 1000)
    out = []
    for t in list(state.outbox.values()) + list(state.active.values()):
        out.append({"labels": dict(t.labels), "annotations": dict(t.annotations),
                    "startsAt": rfc3339(t.starts_ms),
                    "endsAt": rfc3339(t.ends_ms if t.ends_ms is not None else ends)})
    return out


def _tracked(d: Mapping[str, Any]) -> Tracked:
    return Tracked({str(k): str(v) for k, v in d["labels"].items()},
                   {str(k): str(v) for k, v in d["annotations"].items()},
                   int(d["starts_ms"]), None if d.get("ends_ms") is None else int(d["ends_ms"]))


def _key(t: Tracked) -> str:
    return alert_key(t.labels)


def load_state(path: Path) -> AlertState:
    """The state in ``path``; an absent file is the empty state (first start)."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return AlertState()
    except PermissionError:
        raise StateFileError(f"state file {path} is not readable "
                             "(check its owner: the service's user must read it)") from None
    except (OSError, ValueError) as exc:
        raise StateFileError(f"state file {path} is unreadable: {exc} "
                             "(move it aside: alerts then start afresh)") from None
    try:
        if raw.get("version") != STATE_VERSION:
            raise ValueError(f"version {raw.get('version')!r}, expected {STATE_VERSION}")
        active = [_tracked(d) for d in raw["active"]]
        outbox = [_tracked(d) for d in raw["outbox"]]
        mem = raw["memory"]
        memory = Memory({str(k): int(v) for k, v in mem["offline_since"].items()},
                        {str(k): (str(v[0]), str(v[1]), int(v[2]))
                         for k, v in mem["update_first"].items()})
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        raise StateFileError(f"state file {path} is not an alerts state: {exc} "
                             "(move it aside: alerts then start afresh)") from None
    return AlertState({_key(t): t for t in active}, {_key(t): t for t in outbox}, memory)


def _dump(t: Tracked) -> dict[str, Any]:
    return {"labels": dict(t.labels), "annotations": dict(t.annotations),
            "starts_ms": t.starts_ms, "ends_ms": t.ends_ms}


def save_state(path: Path, state: AlertState) -> None:
    """Write ``state`` atomically: temp file, fsync, rename, fsync the directory."""
    body = json.dumps({
        "version": STATE_VERSION,
        "active": [_dump(t) for _, t in sorted(state.active.items())],
        "outbox": [_dump(t) for _, t in sorted(state.outbox.items())],
        "memory": {"offline_since": dict(sorted(state.memory.offline_since.items())),
                   "update_first": {k: list(v) for k, v
                                    in sorted(state.memory.update_first.items())}},
    }, indent=1)
    tmp = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(body)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise StateFileError(f"cannot write state file {path}: {exc.strerror or exc} "
                             "(check [alerts] state_file and its directory's owner)") from None
