"""The long hostile-input run: ``python -m bench.fuzz --examples 100000``.

The same strategies and invariants as ``tests/gateway/test_fuzz.py`` (see
``tests/gateway/hostile.py``): telemetry, status, serial lines and site quantities
with integers to 2^200, NaN/Infinity, 1e400, lone surrogates, NUL, 100,000-character
strings and deep nesting, through the real SQLite buffer with the delivery
accounting on. To make 100,000 examples affordable, examples share an intake
(``--fresh-every`` examples per set of files) and the restart-and-redelivery check
runs every ``--restart-every`` examples instead of after each. Prints one figure;
exits 1 on the first broken invariant (hypothesis prints the example).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter

from hypothesis import HealthCheck, Phase, given, settings

from tests.gateway.hostile import Intake, Sent, check_restart, check_traffic, mark, traffic


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.fuzz", description=__doc__.split("\n")[0])
    ap.add_argument("--examples", type=int, default=100_000, help="hypothesis examples to run")
    ap.add_argument("--max-messages", type=int, default=6, help="messages per example, at most")
    ap.add_argument("--restart-every", type=int, default=50,
                    help="restart the intake and redeliver every N examples")
    ap.add_argument("--fresh-every", type=int, default=500,
                    help="start on new files every N examples (keeps each check cheap)")
    args = ap.parse_args(argv)

    state = {"intake": Intake(), "n": 0}
    stats: Counter[str] = Counter()
    started = time.monotonic()

    @settings(max_examples=args.examples, deadline=None, database=None,
              phases=(Phase.generate,), suppress_health_check=list(HealthCheck))
    @given(traffic(args.max_messages))
    def one(sent: list[Sent]) -> None:
        intake: Intake = state["intake"]  # type: ignore[assignment]
        since = mark(intake, sent)
        intake.feed([s.msg for s in sent], flush_delivery=False)
        check_traffic(intake, sent, since)
        n = state["n"] = int(state["n"]) + 1  # type: ignore[call-overload]
        stats["messages"] += len(sent)
        stats["valid"] += sum(1 for s in sent if s.valid_points is not None)
        stats["reports"] += sum(1 for t, _ in intake.sink.published[since.published:]
                                if t.endswith("/rejected"))
        if n % args.restart_every == 0:
            check_restart(intake, sent)
            stats["restarts"] += 1
        if n % args.fresh_every == 0:
            intake.close()
            intake.remove()
            state["intake"] = Intake()
        if n % 10_000 == 0:
            print(f"  {n} examples, {time.monotonic() - started:.0f} s", file=sys.stderr)

    try:
        one()
    finally:
        intake = state["intake"]
        intake.close()  # type: ignore[union-attr]
        intake.remove()  # type: ignore[union-attr]
    elapsed = time.monotonic() - started
    print(f"bench.fuzz: {state['n']} examples, {stats['messages']} messages "
          f"({stats['valid']} valid, {stats['reports']} rejection reports), "
          f"{stats['restarts']} restarts with redelivery; 0 invariants broken; "
          f"{elapsed:.0f} s ({1000 * elapsed / max(int(state['n']), 1):.1f} ms/example)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
