"""The measurements of one benchmark run, each a function of the run's context.

Times are wall clock (``time.time()``) throughout because publishers run in
other processes and report Unix times.
"""

from __future__ import annotations

import bisect
import json
import shutil
import subprocess
import sys
import threading
import time
from array import array
from dataclasses import dataclass
from pathlib import Path

from bench.flame import Profiler
from bench.procs import Consumer, child_env, log_size, publish, subscribed
from bench.profile import POINTS_PER_MSG, READINGS_PER_MSG
from bench.stores import Counter, InfluxCounter
from tests.servers import Mosquitto

TOPIC = "livinglab/v1/+/+/telemetry"


@dataclass
class Ctx:
    run_dir: Path
    broker: Mosquitto
    counter: Counter
    consumer: Consumer
    publishers: int
    poll: float = 0.1
    stable: float = 15.0
    max_wait: float = 300.0
    profile_dir: Path | None = None


def profiler(ctx: Ctx, name: str) -> Profiler | None:
    """py-spy on the consumer for one phase, when --profile asked for it."""
    if ctx.profile_dir is None or ctx.consumer.proc is None:
        return None
    return Profiler(ctx.consumer.proc.pid, ctx.profile_dir / f"{name}.folded")


def stop_profiler(prof: Profiler | None) -> str | None:
    out = prof.stop() if prof is not None else None
    return str(out) if out is not None else None


def rate(n: float, span: float) -> float | None:
    return round(n / span, 1) if span > 0 else None


def wait_landed(ctx: Ctx, base: int, expected: int, t_ref: float) -> dict[str, object]:
    """Poll the store's ingest counter until ``expected`` readings more than ``base``
    are in, or it stopped growing for ``stable`` s, or ``max_wait`` s passed.
    ``t_done`` is the first poll that saw the final level; ``t_first`` the first growth."""
    last, t_change, t_first = base, time.time(), None
    hist: list[tuple[float, int]] = []
    why = "all ingested"
    while True:
        t = time.time()
        try:
            g = ctx.counter.progress()
        except OSError:
            time.sleep(ctx.poll)
            continue
        hist.append((t, g))
        if g != last:
            last, t_change = g, t
            if t_first is None:
                t_first = t
        if g - base >= expected:
            break
        if t - t_change > ctx.stable:
            why = f"stopped growing for {ctx.stable:g} s"
            break
        if t - t_ref > ctx.max_wait:
            why = "max wait"
            break
        time.sleep(ctx.poll)
    t_done = next(tt for tt, gg in hist if gg >= last)
    return {"t_done": t_done, "t_first": t_first, "ingested": last - base, "why": why}


def exact(ctx: Ctx, tag: str, messages: int) -> dict[str, object]:
    points, readings = ctx.counter.count(tag)
    exp_p, exp_r = messages * POINTS_PER_MSG, messages * READINGS_PER_MSG
    return {"points_expected": exp_p, "points_landed": points,
            "readings_expected": exp_r, "readings_landed": readings,
            "lost_points": max(0, exp_p - points), "extra_points": max(0, points - exp_p),
            "zero_loss": points == exp_p and readings == exp_r}


def broker_ceiling(ctx: Ctx, n: int) -> dict[str, object]:
    """A plain paho subscriber, then mosquitto_sub, count the same load."""
    out: dict[str, object] = {}
    p = subprocess.Popen([sys.executable, "-m", "bench.counter", "--port", str(ctx.broker.port),
                          "--expect", str(n)], stdout=subprocess.PIPE, env=child_env(),
                         start_new_session=True)
    try:
        assert p.stdout is not None
        if p.stdout.readline().strip() != b"ready":
            raise RuntimeError("bench.counter did not subscribe")
        lg = publish(ctx.broker.port, "ceil-py", n, ctx.publishers)
        res = json.loads(p.communicate(timeout=ctx.max_wait)[0].decode().splitlines()[-1])
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(10)
    span = float(res["t_last_recv"]) - float(lg["t_first_publish"])
    out["paho"] = {"received": res["received"], "sent": n, "pub_msg_per_s": lg["pub_msg_per_s"],
                   "msg_per_s": rate(res["received"], span),
                   "readings_per_s": rate(res["received"] * READINGS_PER_MSG, span)}
    if shutil.which("mosquitto_sub"):
        out["mosquitto_sub"] = _ceiling_c(ctx, n)
    return out


def _ceiling_c(ctx: Ctx, n: int) -> dict[str, object]:
    sink = ctx.run_dir / "mosquitto_sub.out"
    off = log_size(ctx.broker.log)
    with open(sink, "wb") as f:
        p = subprocess.Popen(["stdbuf", "-oL", "mosquitto_sub", "-h", "127.0.0.1", "-p",
                              str(ctx.broker.port), "-i", "c-counter", "-q", "1", "-t", TOPIC,
                              "-C", str(n), "-F", "%U"], stdout=f, start_new_session=True)
    try:
        end = time.monotonic() + 20
        while subscribed(ctx.broker.log, off) != "c-counter":
            if time.monotonic() > end:
                raise RuntimeError("mosquitto_sub did not subscribe")
            time.sleep(0.05)
        lg = publish(ctx.broker.port, "ceil-c", n, ctx.publishers)
        try:
            p.wait(ctx.stable + 30)
        except subprocess.TimeoutExpired:
            pass
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(10)
    ts = [float(x) for x in sink.read_text().split() if x[:1].isdigit()]
    span = (ts[-1] - float(lg["t_first_publish"])) if ts else 0.0
    return {"received": len(ts), "sent": n, "pub_msg_per_s": lg["pub_msg_per_s"],
            "msg_per_s": rate(len(ts), span), "readings_per_s": rate(len(ts) * 8, span)}


def drain_ceiling(ctx: Ctx, n: int) -> dict[str, object]:
    """What a do-nothing client drains from a queued backlog: a persistent paho session
    (and mosquitto_sub -c) subscribes, leaves, ``n`` messages are queued, it comes back."""
    out: dict[str, object] = {}
    port = str(ctx.broker.port)
    py = [sys.executable, "-m", "bench.counter", "--port", port, "--session", "bench-drain-py"]
    subprocess.run([*py, "--expect", "0"], env=child_env(), capture_output=True, timeout=60,
                   check=True)
    publish(ctx.broker.port, "drain-py", n, ctx.publishers)
    _wait_stored(ctx.broker.port, n)
    t0 = time.time()
    r = subprocess.run([*py, "--expect", str(n)], env=child_env(), capture_output=True,
                       timeout=ctx.max_wait, check=True)
    res = json.loads(r.stdout.decode().splitlines()[-1])
    span = float(res["t_last_recv"]) - t0
    out["paho"] = {"received": res["received"], "sent": n, "seconds": round(span, 3),
                   "msg_per_s": rate(res["received"], span),
                   "readings_per_s": rate(res["received"] * READINGS_PER_MSG, span)}
    if shutil.which("mosquitto_sub"):
        c = ["mosquitto_sub", "-h", "127.0.0.1", "-p", port, "-c", "-i", "bench-drain-c",
             "-q", "1", "-t", TOPIC]
        subprocess.run([*c, "-E"], capture_output=True, timeout=60, check=True)
        publish(ctx.broker.port, "drain-c", n, ctx.publishers)
        _wait_stored(ctx.broker.port, n)
        sink = ctx.run_dir / "drain-c.out"
        t0 = time.time()
        with open(sink, "wb") as f:
            subprocess.run(["stdbuf", "-oL", *c, "-C", str(n), "-F", "%U"], stdout=f,
                           timeout=ctx.max_wait, check=False)
        ts = [float(x) for x in sink.read_text().split() if x[:1].isdigit()]
        span = (ts[-1] - t0) if ts else 0.0
        out["mosquitto_sub"] = {"received": len(ts), "sent": n, "seconds": round(span, 3),
                                "msg_per_s": rate(len(ts), span),
                                "readings_per_s": rate(len(ts) * READINGS_PER_MSG, span)}
    # a clean connect with the same client id discards each session; left alone, the
    # broker would keep queueing every later message for them (and slow the next phases)
    for cid in ("bench-drain-py", "bench-drain-c"):
        subprocess.run(["mosquitto_sub", "-h", "127.0.0.1", "-p", port, "-i", cid,
                        "-t", TOPIC, "-E"], capture_output=True, timeout=60)
    return out


def _wait_stored(port: int, n: int, timeout: float = 6.0) -> int | None:
    """Until mosquitto's $SYS store count shows the queued backlog (published every 1 s)."""
    end = time.monotonic() + timeout
    held = _broker_stored(port)
    while (held is None or held < n) and time.monotonic() < end:
        time.sleep(0.5)
        held = _broker_stored(port)
    return held


def start_consumer(ctx: Ctx, timeout: float = 90.0) -> str:
    """Start the consumer fresh and wait until it subscribed; returns its client id."""
    off = log_size(ctx.broker.log)
    ctx.consumer.start()
    end = time.monotonic() + timeout
    while (cid := subscribed(ctx.broker.log, off)) is None:
        if not ctx.consumer.alive():
            raise RuntimeError("consumer exited before subscribing:\n" + ctx.consumer.tail())
        if time.monotonic() > end:
            raise RuntimeError(f"consumer did not subscribe in {timeout}s:\n"
                               + ctx.consumer.tail())
        time.sleep(0.05)
    return cid


def live(ctx: Ctx, n: int) -> dict[str, object]:
    """Max-rate publishers with the consumer running: first publish -> all landed."""
    base = ctx.counter.progress()
    cpu0 = ctx.consumer.stats().get("cpu_s", 0.0)
    prof = profiler(ctx, "live")
    lg = publish(ctx.broker.port, "live", n, ctx.publishers)
    w = wait_landed(ctx, base, n * READINGS_PER_MSG, float(lg["t_last_ack"]))
    prof_file = stop_profiler(prof)
    st = ctx.consumer.stats()
    span = float(w["t_done"]) - float(lg["t_first_publish"])  # type: ignore[arg-type]
    landed = exact(ctx, "live", n)
    msgs = int(landed["points_landed"]) / POINTS_PER_MSG  # type: ignore[call-overload]
    return {"sent": n, **{k: lg[k] for k in ("publishers", "pub_msg_per_s", "all_acked")},
            "seconds": round(span, 3), "msg_per_s": rate(msgs, span),
            "readings_per_s": rate(int(landed["readings_landed"]), span),  # type: ignore[call-overload]
            "after_last_puback_s": round(float(w["t_done"]) - float(lg["t_last_ack"]), 3),  # type: ignore[arg-type]
            "wait_ended": w["why"], "cpu_s": round(st.get("cpu_s", 0.0) - cpu0, 2),
            "rss_mib": st.get("VmRSS"), "profile": prof_file, **landed}


def backlog(ctx: Ctx, n: int) -> dict[str, object]:
    """SIGTERM the consumer, queue ``n`` messages at the broker, restart, time the drain."""
    stopped = ctx.consumer.stop()
    lg = publish(ctx.broker.port, "backlog", n, ctx.publishers)
    held = _wait_stored(ctx.broker.port, n)
    base = ctx.counter.progress()
    t0 = time.time()
    ctx.consumer.start()
    prof = profiler(ctx, "backlog")
    w = wait_landed(ctx, base, n * READINGS_PER_MSG, t0)
    prof_file = stop_profiler(prof)
    st = ctx.consumer.stats()
    span = float(w["t_done"]) - t0  # type: ignore[arg-type]
    landed = exact(ctx, "backlog", n)
    msgs = int(landed["points_landed"]) / POINTS_PER_MSG  # type: ignore[call-overload]
    t_first = w["t_first"]
    return {"sent": n, "pub_msg_per_s": lg["pub_msg_per_s"], "broker_stored_before": held,
            "stop_before": {"rc": stopped.get("rc"), "stop_s": stopped.get("stop_s")},
            "drain_s": round(span, 3),
            "first_point_s": round(float(t_first) - t0, 3) if t_first else None,  # type: ignore[arg-type]
            "msg_per_s": rate(msgs, span),
            "readings_per_s": rate(int(landed["readings_landed"]), span),  # type: ignore[call-overload]
            "wait_ended": w["why"], "peak_rss_mib": st.get("VmHWM"),
            "rss_end": {k: st.get(k) for k in ("VmRSS", "RssAnon", "RssFile", "RssShmem")},
            "cpu_s": st.get("cpu_s"), "profile": prof_file, **landed}


def _broker_stored(port: int) -> int | None:
    """``$SYS/broker/store/messages/count``: what mosquitto holds (queued + ~50 $SYS)."""
    try:
        r = subprocess.run(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(port), "-C", "1",
                            "-W", "5", "-t", "$SYS/broker/store/messages/count"],
                           capture_output=True, text=True, timeout=15)
        return int(r.stdout.split()[0])
    except (OSError, ValueError, IndexError, subprocess.TimeoutExpired):
        return None


class Poller(threading.Thread):
    """Samples a cumulative count (points) every ``interval`` s: (time, count) pairs."""

    def __init__(self, read: object, interval: float) -> None:
        super().__init__(daemon=True)
        self.read, self.interval = read, interval
        self.samples: list[tuple[float, float]] = []
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            v = self.read()  # type: ignore[operator]
            if v is not None:
                self.samples.append((time.time(), float(v)))
            self.halt.wait(self.interval)


def latency(ctx: Ctx, msg_rate: float, seconds: float) -> dict[str, object]:
    """Paced publishing; per-message latency = first time the cumulative stored count
    covered message i minus its publish time (see docs/benchmarks.md, "Latency")."""
    n = int(msg_rate * seconds)
    fwd_name = "livinglab_points_forwarded_total"
    source = "gateway /metrics livinglab_points_forwarded_total (points the store acked)"

    def read() -> float | None:
        return ctx.consumer.metric(fwd_name)

    interval = 0.01
    if msg_rate <= 100 and isinstance(ctx.counter, InfluxCounter):
        # at a low rate the gateway's own points (health, delivery and rejection counts,
        # written every minute) are a large share of the forwarded counter and run it
        # ahead of the readings (negative latencies): count the phase's own points
        source = "store: points of the lat-* devices (count query), polled every 50 ms"
        interval = 0.05

        def read() -> float | None:  # noqa: F811 - the exact count, where it is cheap
            try:
                return float(ctx.counter.count("lat")[0])
            except OSError:
                return None
    elif read() is None:
        source = "store ingest counter (readings / 8 * 3), polled every 50 ms"
        interval = 0.05

        def read() -> float | None:  # noqa: F811 - fallback when /metrics is not served
            try:
                return ctx.counter.progress() / READINGS_PER_MSG * POINTS_PER_MSG
            except OSError:
                return None
    base = read() or 0.0
    poller = Poller(read, interval)
    poller.start()
    times_file = ctx.run_dir / "lat-times"
    try:
        lg = publish(ctx.broker.port, "lat", n, 1, rate=msg_rate, times_out=times_file)
        end = time.monotonic() + 60
        while time.monotonic() < end and (
                not poller.samples or poller.samples[-1][1] < base + n * POINTS_PER_MSG):
            time.sleep(0.05)
    finally:
        poller.halt.set()
        poller.join(5)
    pub = array("d")
    with open(f"{times_file}.0", "rb") as f:
        pub.frombytes(f.read())
    ts = [t for t, _ in poller.samples]
    counts = [c - base for _, c in poller.samples]
    lats = []
    for i, tp in enumerate(pub):
        k = bisect.bisect_left(counts, (i + 1) * POINTS_PER_MSG)  # counts never decrease
        if k == len(counts):
            break
        lats.append(ts[k] - tp)
    lats.sort()

    def pct(q: float) -> float | None:
        return round(lats[min(len(lats) - 1, int(q * len(lats)))], 4) if lats else None

    # the forwarded counter includes the gateway's own points (health, delivery), so it
    # can reach the target before the last group lands: wait for the exact count too
    end = time.monotonic() + 30
    while time.monotonic() < end and ctx.counter.count("lat")[0] < n * POINTS_PER_MSG:
        time.sleep(0.2)
    landed = exact(ctx, "lat", n)
    return {"rate": msg_rate, "sent": n, "pub_msg_per_s": lg["pub_msg_per_s"], "source": source,
            "poll_s": interval, "matched": len(lats), "p50_s": pct(0.50), "p90_s": pct(0.90),
            "p99_s": pct(0.99), "max_s": round(lats[-1], 4) if lats else None, **landed}
