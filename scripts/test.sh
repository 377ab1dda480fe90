#!/usr/bin/env bash
# The full test suite: installs the system packages it needs, then checks
# formatting and lints and runs every test (unit, real-KDC integration,
# test-Vault scenarios, credmon, and the OpenBao end-to-end suite).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
export NO_PROXY=localhost,127.0.0.1
cargo fmt --check
cargo clippy --locked --all-targets -- -D warnings
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --locked 2>&1 | tee "$log"
# The packages: release build, the .deb and the RPM layout each installed into
# a clean root, file lists, links, man pages and systemd units checked.
dist/check-package.sh --deb
# One closing line for the whole suite.
awk '/^test result:/ { p += $4; f += $6 } END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
