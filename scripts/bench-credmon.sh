#!/usr/bin/env bash
# Benchmark of `robot-credmon credmon` at 10,000 credentials (issue 10), run
# RUNS times (default 3); prints every run's measures and the load average, for
# docs/performance.md. Run as root. Environment:
#   RUNS=3 IDLE=300 LATENCY_MS=20   runs, idle-CPU window (s), Vault read latency
#   PYTHON_CREDMON=PY:DIR           also run HTCondor's condor_credmon_vault
#                                   (PY: a python with the htcondor bindings)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3} IDLE=${IDLE:-300} LATENCY_MS=${LATENCY_MS:-20}
cargo build --release --locked --bin robot-credmon --example bench_credmon 2>&1 | tail -n 1
extra=()
[ -n "${PYTHON_CREDMON:-}" ] && extra=(--python "$PYTHON_CREDMON")
for i in $(seq 1 "$RUNS"); do
  echo "## run $i, load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
  target/release/examples/bench_credmon target/release/robot-credmon \
    --idle-seconds "$IDLE" --latency-ms "$LATENCY_MS" "${extra[@]}"
  echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
done
