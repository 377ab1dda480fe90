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
# The packages: one release build; both .debs (lintian) and both RPMs (rpmbuild
# -bb, rpmlint), file lists, units, and HTCondor's config parser on install/removal.
dist/check-package.sh --all
# One closing line for the whole suite.
awk '/^test result:/ { p += $4; f += $6 } END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
