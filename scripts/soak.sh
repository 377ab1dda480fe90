#!/usr/bin/env bash
# The chaos soak of the real credmon (issue 15, part 5; not in CI): the
# release `robot-credmon credmon` against the in-process test Vault with
# 4-minute tokens, a seeded event every 1-5 s (kill -9 and restarts as
# condor_master does them, SIGTERM, SIGHUP storms, Vault 503/429/slow/stalled/
# down, new, replaced, deleted and swept credentials, a full disk) and a
# reader that checks every .use four times a second. Prints one line a
# minute and the figures at the end (docs/reliability.md, "Chaos soak");
# exit 0 when every goal is met, 1 when not, 2 on a set-up error.
#
#   scripts/soak.sh [--minutes M] [--seed S] [--credentials N] [--out DIR]
#                   [--without KIND,...]   # e.g. kill-9,sigterm: one credmon all along
#   scripts/soak.sh --seed S --plan     # print the schedule of seed S only
#
# Defaults: 60 minutes, a seed from the clock (printed with the command that
# replays it), 300 credentials, output in target/soak/<seed>/. Run as root
# (it mounts a 32 MiB tmpfs for the credential directory) with the packages
# of scripts/install-deps.sh (MIT KDC). Uses little CPU; runs at nice 10.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
  echo "soak.sh: run as root (tmpfs mount, root-owned .use files)" >&2
  exit 2
fi
nice -n 10 cargo build --release --locked --bin robot-credmon --example soak 2>&1 | tail -n 1
exec nice -n 10 target/release/examples/soak --binary target/release/robot-credmon "$@"
