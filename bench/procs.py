"""Processes the benchmark starts: publishers, the consumer under test, subscribers.

Every process is started in its own session and stopped by its PID (SIGTERM,
then SIGKILL after a bounded wait); nothing is found or killed by name.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")
RE_SUB = re.compile(r"^\d+: (\S+) \d (livinglab/v1/\S+)$", re.M)


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    return {k: v for k, v in env.items() if not k.startswith("LIVINGLAB_")}


def proc_stats(pid: int) -> dict[str, float]:
    """VmRSS / VmHWM (MiB) and CPU seconds of a live process; {} once it is gone."""
    out: dict[str, float] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(("VmRSS:", "VmHWM:", "RssAnon:", "RssFile:", "RssShmem:")):
                out[line.split(":")[0]] = round(int(line.split()[1]) / 1024, 1)
        f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        out["cpu_s"] = round((int(f[11]) + int(f[12])) / CLK_TCK, 2)
    except (FileNotFoundError, ProcessLookupError, IndexError):
        pass
    return out


def stop(p: subprocess.Popen[bytes], timeout: float = 20.0) -> float:
    """SIGTERM and wait (SIGKILL after ``timeout``); returns seconds until it exited."""
    t0 = time.monotonic()
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            print(f"pid {p.pid} ignored SIGTERM for {timeout}s: SIGKILL", file=sys.stderr)
            p.kill()
            p.wait(10)
    return round(time.monotonic() - t0, 2)


class Consumer:
    """The consumer under test: ``livinglab gateway``, the stand-in, or any command."""

    def __init__(self, cmd: list[str], run_dir: Path, health_port: int) -> None:
        self.cmd, self.run_dir, self.health_port = cmd, run_dir, health_port
        self.log = run_dir / "consumer.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.peak_rss_mib = 0.0

    def start(self) -> subprocess.Popen[bytes]:
        with open(self.log, "ab") as f:
            f.write(f"\n===== bench: start at {time.time():.3f}\n".encode())
            f.flush()
            self.proc = subprocess.Popen(self.cmd, stdout=f, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, cwd=self.run_dir,
                                         env=child_env(), start_new_session=True)
        return self.proc

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stats(self) -> dict[str, float]:
        s = proc_stats(self.proc.pid) if self.proc is not None else {}
        self.peak_rss_mib = max(self.peak_rss_mib, s.get("VmHWM", 0.0))
        return s

    def stop(self) -> dict[str, float]:
        """Stop it; returns its last stats plus the exit code and the seconds it took."""
        if self.proc is None:
            return {}
        s = self.stats()
        s["stop_s"] = stop(self.proc)
        s["rc"] = float(self.proc.returncode if self.proc.returncode is not None else -999)
        self.proc = None
        return s

    def metric(self, name: str) -> float | None:
        """One unlabelled sample from the consumer's /metrics, None if not served."""
        if not self.health_port:
            return None
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.health_port}/metrics",
                                        timeout=2) as r:
                for line in r.read().decode().splitlines():
                    if line.startswith(name + " "):
                        return float(line.split()[1])
        except OSError:
            return None
        return None

    def tail(self, n: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


def log_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def subscribed(broker_log: Path, offset: int, skip_prefix: str = "bench-") -> str | None:
    """Client id of a consumer that subscribed to livinglab/v1/... since ``offset``."""
    try:
        with open(broker_log, "rb") as f:
            f.seek(offset)
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return None
    for cid, _filt in RE_SUB.findall(text):
        if not cid.startswith(skip_prefix):
            return str(cid)
    return None


def publish(port: int, tag: str, messages: int, publishers: int, rate: float = 0.0,
            times_out: Path | None = None, devices: int = 100) -> dict[str, object]:
    """``publishers`` loadgen processes sharing ``messages`` (and ``rate``), one start time."""
    start_at = time.time() + 1.0 + 0.2 * publishers
    procs = []
    for j in range(publishers):
        share = messages // publishers + (1 if j < messages % publishers else 0)
        cmd = [sys.executable, "-m", "bench.loadgen", "--port", str(port), "--tag", tag,
               "-m", str(share), "-d", str(devices), "--shard", str(j),
               "--shards", str(publishers), "--rate", str(rate / publishers),
               "--start-at", f"{start_at:.3f}"]
        if times_out is not None:
            cmd += ["--times-out", f"{times_out}.{j}"]
        procs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      env=child_env(), start_new_session=True))
    shards = []
    for p in procs:
        out, err = p.communicate(timeout=900)
        lines = out.decode().strip().splitlines()
        if not lines:
            raise RuntimeError(f"loadgen failed rc={p.returncode}: {err.decode()[-1500:]}")
        shards.append(json.loads(lines[-1]))
    acked = sum(int(s["acked"]) for s in shards)
    t_first = min(float(s["t_first_publish"]) for s in shards)
    t_last = max(float(s["t_last_ack"]) for s in shards)
    span = t_last - t_first
    return {"messages": messages, "acked": acked, "publishers": publishers,
            "all_acked": all(s["all_acked"] for s in shards),
            "t_first_publish": t_first, "t_last_ack": t_last,
            "pub_msg_per_s": round(acked / span, 1) if span > 0 else None}
