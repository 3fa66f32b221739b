"""Child processes that die with their parent (Linux ``PR_SET_PDEATHSIG``).

The fleet and the demo stop every child by PID in ``finally``; that cannot run
when they are killed with SIGKILL (an OOM kill, a CI timeout). So every child
also asks the kernel for SIGTERM when its parent goes away: no simulated device
keeps publishing into the void after its supervisor is gone.

The signal fires when the *thread* that forked the child exits, so children must
be spawned from a long-lived thread (the event loop's), never from a worker.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import signal
import sys
from collections.abc import Callable

_PR_SET_PDEATHSIG = 1


def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    except OSError:
        return None


_LIBC = _libc()


def _set_pdeathsig() -> None:
    # Runs in the child between fork and exec: no allocation-heavy work here.
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)


def die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` for Popen/create_subprocess_exec, or None off Linux."""
    return _set_pdeathsig if _LIBC is not None else None
