#!/usr/bin/env bash
# The deterministic simulation of the credmon (issue 15; tests/sim): the real
# core in virtual time against a modelled Vault, KDC, credd and host, seed
# after seed on every core. Usage:
#   scripts/simulate.sh [--seeds N] [--first-seed S] [--days D] [--credentials C] [--mutant M] [--get]
# Defaults: 1 seed from 1, 365 days, 1,000 credentials. With --get it
# simulates `get` run by cron for one robot instead (tests/sim/get.rs). Prints each failing
# seed with the command that replays it, and last
#   simulated: N seeds x D days x C credentials, V invariant violations
# Exits 1 when V > 0. SIM_LOG=debug shows the credmon's log of a replayed seed.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked --example simulate 2>&1 | tail -n 1 >&2
exec target/release/examples/simulate "$@"
