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
cargo test --locked
