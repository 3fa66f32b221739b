"""py-spy around a phase, and a text summary of where the consumer spent its time.

``python -m bench --profile`` attaches ``py-spy record --format raw`` (folded
stacks, all threads, idle samples excluded) to the consumer during the live
and backlog phases and prints the frames with the most samples: self time
(the frame on top of the stack) and total time (anywhere on the stack).
``python -m bench.flame FILE.folded`` summarises a saved profile again; open
the ``.svg`` made next to it (``py-spy record`` default format) in a browser.
"""

from __future__ import annotations

import argparse
import re
import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path


class Profiler:
    """``py-spy record`` on one PID until :meth:`stop`; no-op when py-spy is missing."""

    def __init__(self, pid: int, out: Path, rate: int = 100) -> None:
        self.out = out
        self.proc: subprocess.Popen[bytes] | None = None
        # the venv's py-spy when the venv is not activated (.venv/bin/python -m bench)
        exe = (shutil.which("py-spy")
               or shutil.which("py-spy", path=str(Path(sys.executable).parent)))
        if exe is None:
            print("py-spy not installed (pip install py-spy): no profile", file=sys.stderr)
            return
        self.proc = subprocess.Popen([exe, "record", "--format", "raw", "--rate", str(rate),
                                      "--pid", str(pid), "-o", str(out), "--nonblocking"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)

    def stop(self) -> Path | None:
        if self.proc is None:
            return None
        self.proc.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        return self.out if self.out.exists() else None


FRAME = re.compile(r"^(.*) \((.*?)(?::\d+)?\)$")
PROJECT = ("gateway/", "protocols/", "devices/", "bench/")


def _split(frame: str) -> tuple[str, str]:
    """``func (path/to/mod.py:12)`` -> (``func (path/to/mod.py)``, ``path/to/mod.py``)."""
    m = FRAME.match(frame.strip())
    if not m:
        return frame.strip(), ""
    return f"{m.group(1)} ({m.group(2)})", m.group(2)


def _package(path: str) -> str:
    if path.startswith("<"):
        return "startup (imports)" if "importlib" in path else path
    head = path.split("/", 1)[0]
    return head if "/" in path else f"stdlib {path}"


def summarise(folded: Path, top: int = 15, seconds: float | None = None,
              rate: int = 100) -> str:
    """Self time per function and per package, project functions' total time, and
    (given the phase's length) how busy the event-loop thread and the workers were."""
    own: Counter[str] = Counter()
    pkgs: Counter[str] = Counter()
    total: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    n = 0
    for line in folded.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        c = int(count)
        n += c
        frames = [_split(f) for f in stack.split(";")]
        threads["worker threads" if frames[0][0].startswith("Thread._bootstrap")
                else "main thread (event loop)"] += c
        own[frames[-1][0]] += c
        pkgs[_package(frames[-1][1])] += c
        for name in {f for f, path in frames if path.startswith(PROJECT)}:
            total[name] += c
    if not n:
        return f"{folded}: no samples"
    rows = [f"{folded}: {n} samples at {rate} Hz (threads while running Python)"]
    for t, c in threads.most_common():
        busy = f", busy {100 * c / (rate * seconds):.0f}% of the phase" if seconds else ""
        rows.append(f"  {t}: {100 * c / n:.0f}% of samples{busy}")
    rows.append("  self time by package:")
    rows += [f"    {100 * c / n:5.1f}%  {f}" for f, c in pkgs.most_common(top)]
    rows.append("  self time by function:")
    rows += [f"    {100 * c / n:5.1f}%  {f}" for f, c in own.most_common(top)]
    rows.append("  total time of project functions (self + callees):")
    rows += [f"    {100 * c / n:5.1f}%  {f}" for f, c in total.most_common(top)]
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="+", type=Path)
    ap.add_argument("--top", type=int, default=15)
    ap.add_argument("--seconds", type=float, default=None, help="length of the profiled phase")
    a = ap.parse_args(argv)
    for f in a.files:
        print(summarise(f, a.top, a.seconds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
