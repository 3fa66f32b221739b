#!/usr/bin/env bash
# Side by side on the same load, in one session: the peer (a Node-RED
# MQTT -> InfluxDB flow) and our gateway, both driven by the peer harness in
# ../shared/peers (bench.py run --mode nodered | --mode cmd), plus the broker's
# ceiling from the same session. Results: bench/results/peer-<UTC time>.jsonl
# and the harness's min/median summary.
#
# Usage: bench/peer.sh [REPEATS]                (default 1)
# Environment:
#   MESSAGES=20000     live runs at max publish rate (broker defaults and unlimited queue)
#   BACKLOG=100000     backlog drains (consumer down while these are queued); "" = none
#   RATES="1000"       paced live runs (msg/s, 20k messages); "" = none
#   STORES="influx"    influx (influxd 1.6, our influxdb1 store) and/or vm
#                      (VictoriaMetrics, our influxdb2 store)
#   PEERS_SRC=../shared/peers   the harness (only read)
#   PEERS_WORK=/tmp/livinglab-peers
#                      where it runs: the shared copy stays untouched; setup.sh there
#                      installs its venv and node_modules (needs npm) once
set -uo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PEERS_SRC="${PEERS_SRC:-$REPO/../shared/peers}"
PEERS_WORK="${PEERS_WORK:-/tmp/livinglab-peers}"
REPEATS="${1:-1}"
MESSAGES="${MESSAGES:-20000}"
BACKLOG="${BACKLOG-100000}"
RATES="${RATES-1000}"
STORES="${STORES:-influx}"
OUT="${OUT:-$REPO/bench/results/peer-$(date -u +%Y%m%d-%H%M%S).jsonl}"

[ -f "$PEERS_SRC/bench.py" ] || { echo "peer harness not found at $PEERS_SRC" >&2; exit 2; }
if [ ! -f "$PEERS_WORK/bench.py" ] || [ "$PEERS_SRC/bench.py" -nt "$PEERS_WORK/bench.py" ]; then
    mkdir -p "$PEERS_WORK"
    # everything but installed dependencies and old results; then writable
    (cd "$PEERS_SRC" && tar --exclude=.venv --exclude=node_modules --exclude=var \
        --exclude='results/*' -cf - .) | (cd "$PEERS_WORK" && tar -xf -)
    chmod -R u+w "$PEERS_WORK"
fi
"$PEERS_WORK/setup.sh" || exit 1
PY="$PEERS_WORK/.venv/bin/python"
mkdir -p "$(dirname "$OUT")"

# our gateway, exactly as a user runs it; the harness renders the template into
# $CONSUMER_CONFIG (ports, store URL, run dir) and runs it in the run dir
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
OURS="$(command -v python3) -m gateway.cli gateway --config \"\$CONSUMER_CONFIG\""
tpl() { if [ "$1" = vm ]; then echo "$REPO/bench/gw-vm.toml.tpl"; else echo "$REPO/bench/gw.toml.tpl"; fi; }

fails=0
run() {
    echo "--- bench.py run $*"
    if ! "$PY" "$PEERS_WORK/bench.py" run --out "$OUT" -d 100 "$@"; then
        echo "FAILED: bench.py run $*" >&2
        fails=$((fails + 1))
    fi
}
ours() {  # ours STORE ARGS...: our gateway through the harness's --mode cmd
    local store="$1"; shift
    run --mode cmd --label ours --store "$store" --consumer "$OURS" \
        --consumer-config "$(tpl "$store")" "$@"
}

echo "results -> $OUT"
for rep in $(seq 1 "$REPEATS"); do
    echo "=== repeat $rep/$REPEATS"
    run --mode broker-c -m "$MESSAGES"
    run --mode broker-py -m "$MESSAGES"
    for s in $STORES; do
        for q in default unlimited; do
            run --mode nodered --store "$s" --broker-queue "$q" -m "$MESSAGES"
            ours "$s" --broker-queue "$q" -m "$MESSAGES"
        done
        for r in $RATES; do
            run --mode nodered --store "$s" --rate "$r" -m 20000
            ours "$s" --rate "$r" -m 20000
        done
        for m in $BACKLOG; do
            run --backlog --mode nodered --store "$s" -m "$m"
            ours "$s" --backlog -m "$m"
        done
    done
done
echo
"$PY" "$PEERS_WORK/bench.py" summary "$OUT"
[ "$fails" -eq 0 ] || { echo "$fails run(s) failed" >&2; exit 1; }
