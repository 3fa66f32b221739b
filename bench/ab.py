"""``python -m bench.ab``: backlog drain, A/B against an older commit and Node-RED, in one sitting.

The machine is shared and noisy, so absolute msg/s move from hour to hour; what
holds is a ratio measured in one sitting with the runs alternated. This command
installs the reference commit (default f34cd43, the code before the second
turn's six capabilities) into its own venv under ``--work``, then runs the peer
harness's backlog drain (``../shared/peers/bench.py run --backlog``: M messages
queued while the consumer is down, then the drain timed) round by round, the
order rotating each round: the reference, this checkout, and (``--nodered``) the
Node-RED flow a lab would otherwise build. Every run of ours must land 100 %.

    python -m bench.ab --rounds 3 -m 50000 --nodered

Prints one line per run and a table of medians with the ratios; appends every
run to ``bench/results/ab-<time>.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


def _sh(cmd: list[str], **kw: object) -> None:
    subprocess.run(cmd, check=True, **kw)  # type: ignore[call-overload]


def install_ref(ref: str, work: Path) -> Path:
    """The python of a venv with ``ref`` installed (editable) from ``git archive``."""
    dest = work / f"ref-{ref}"
    py = dest / ".venv" / "bin" / "python"
    if (dest / ".installed").exists():
        return py
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    archive = work / f"{ref}.tar"
    with open(archive, "wb") as f:
        _sh(["git", "-C", str(REPO), "archive", "--format=tar", ref], stdout=f)
    with tarfile.open(archive) as t:
        t.extractall(dest, filter="data")
    archive.unlink()
    _sh([sys.executable, "-m", "venv", str(dest / ".venv")])
    _sh([str(py), "-m", "pip", "install", "-q", "-e", str(dest)])
    (dest / ".installed").touch()
    return py


def peers(work: Path) -> Path:
    """A writable copy of ../shared/peers with its venv and node_modules; its python."""
    # /work/main/bench -> /work/shared; a worktree /work/wt/NAME/bench -> /work/shared too
    found = [d / "shared" / "peers" for d in (REPO.parent, REPO.parent.parent)
             if (d / "shared" / "peers" / "bench.py").exists()]
    src = Path(os.environ.get("PEERS_SRC") or (found[0] if found else
                                                REPO.parent / "shared" / "peers"))
    dst = work / "peers"
    if not (dst / "bench.py").exists():
        shutil.copytree(src, dst, ignore=shutil.ignore_patterns(".venv", "node_modules", "var",
                                                                "results"))
        for p in dst.rglob("*"):
            p.chmod(p.stat().st_mode | 0o200)
        (dst / "results").mkdir(exist_ok=True)
    _sh(["bash", str(dst / "setup.sh")], cwd=dst)
    return dst / ".venv" / "bin" / "python"


def run_one(peer_py: Path, label: str, messages: int, out: Path, store: str,
            consumer_py: Path | None) -> dict[str, object]:
    bench = peer_py.parent.parent.parent / "bench.py"
    cmd = [str(peer_py), str(bench), "run", "--backlog", "--store", store, "-m", str(messages),
           "-d", "100", "--label", label, "--out", str(out)]
    if consumer_py is None:
        cmd += ["--mode", "nodered"]
    else:
        tpl = HERE / ("gw-vm.toml.tpl" if store == "vm" else "gw.toml.tpl")
        cmd += ["--mode", "cmd", "--consumer-config", str(tpl), "--consumer",
                f'{consumer_py} -m gateway.cli gateway --config "$CONSUMER_CONFIG"']
    before = out.read_text().count("\n") if out.exists() else 0
    subprocess.run(cmd, check=False, timeout=1200)
    lines = out.read_text().splitlines() if out.exists() else []
    if len(lines) <= before:
        return {"label": label, "failed": True}
    r: dict[str, object] = json.loads(lines[-1])
    r["label"] = label
    return r


def _landed_pct(r: dict[str, object]) -> float:
    v = r.get("pct_landed")
    return float(v) if isinstance(v, (int, float)) else float("nan")


def summarise(runs: list[dict[str, object]]) -> str:
    by: dict[str, list[dict[str, object]]] = {}
    for r in runs:
        by.setdefault(str(r["label"]), []).append(r)

    def med(label: str, key: str) -> float | None:
        vals = [float(r[key]) for r in by.get(label, [])  # type: ignore[arg-type]
                if isinstance(r.get(key), (int, float))]
        return statistics.median(vals) if vals else None

    lines = ["label        runs  drain msg/s (median, min-max)  first point s  cpu s"]
    for label, rs in by.items():
        vals = [float(r["drain_msg_per_s"]) for r in rs  # type: ignore[arg-type]
                if isinstance(r.get("drain_msg_per_s"), (int, float))]
        span = f"{min(vals):,.0f}-{max(vals):,.0f}" if vals else "-"
        lines.append(f"{label:<12} {len(rs):>4}  {med(label, 'drain_msg_per_s') or 0:>10,.0f} "
                     f"({span})  {med(label, 'first_landed_s') or 0:>10.2f}  "
                     f"{med(label, 'consumer_cpu_load_s') or 0:>6.2f}")
    ours = med("this", "drain_msg_per_s")
    for other in by:
        theirs = med(other, "drain_msg_per_s")
        if other != "this" and ours and theirs:
            lines.append(f"ratio this/{other:<8} {ours / theirs:.2f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ref", default="f34cd43", help="the commit to compare against")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("-m", "--messages", type=int, default=50_000)
    ap.add_argument("--store", choices=["influx", "vm"], default="influx")
    ap.add_argument("--nodered", action="store_true", help="add the Node-RED flow each round")
    ap.add_argument("--also", action="append", default=[], metavar="COMMIT",
                    help="another commit to run each round (its own venv, labelled by the "
                         "commit), e.g. main before a change; repeatable")
    ap.add_argument("--work", type=Path, default=Path("/tmp/livinglab-ab"))
    ap.add_argument("--out", type=Path,
                    default=HERE / "results" / f"ab-{time.strftime('%Y%m%d-%H%M%S')}.jsonl")
    a = ap.parse_args(argv)
    a.work.mkdir(parents=True, exist_ok=True)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    ref_py = install_ref(a.ref, a.work)
    peer_py = peers(a.work)
    contenders: list[tuple[str, Path | None]] = [("ref", ref_py), ("this", Path(sys.executable))]
    contenders += [(c, install_ref(c, a.work)) for c in a.also]
    if a.nodered:
        contenders.append(("nodered", None))
    runs: list[dict[str, object]] = []
    load0 = os.getloadavg()
    for rnd in range(a.rounds):
        order = contenders[rnd % len(contenders):] + contenders[:rnd % len(contenders)]
        for label, py in order:
            r = run_one(peer_py, label, a.messages, a.out, a.store, py)
            r["round"] = rnd + 1
            runs.append(r)
            print(f"round {rnd + 1} {label:<8} drain {r.get('drain_msg_per_s')} msg/s, "
                  f"first point {r.get('first_landed_s')} s, cpu {r.get('consumer_cpu_load_s')} s, "
                  f"landed {_landed_pct(r)} %", flush=True)
    print(f"\n{a.rounds} rounds, {a.messages:,} messages, store {a.store}, ref {a.ref}; "
          f"load average {load0[0]:.1f} at start, {os.getloadavg()[0]:.1f} at end")
    print(summarise(runs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
