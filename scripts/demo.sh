#!/usr/bin/env bash
# Demo on an embedded default: starts a throwaway MIT KDC and the test Vault
# on loopback, runs `robot-credmon get` to write a real token and show its
# claims, then runs it again to show that a fresh token costs nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cargo build --release --locked --bin robot-credmon --example test-vault 2>&1 | tail -n 1
BIN=target/release/robot-credmon
WORK=$(mktemp -d /tmp/robot-credmon-demo.XXXXXX)
chmod 755 "$WORK"
target/release/examples/test-vault "$WORK" --serve-seconds 120 >"$WORK/env.sh" 2>"$WORK/vault.log" &
for _ in $(seq 1 200); do grep -q VAULT_PID "$WORK/env.sh" 2>/dev/null && break; sleep 0.05; done
# shellcheck disable=SC1091
source "$WORK/env.sh"
trap 'kill "$VAULT_PID" 2>/dev/null || true' EXIT

echo "== first run: keytab -> Kerberos -> Vault -> $WORK/bt"
"$BIN" get -v -a "$VAULT_URL" --cafile "$VAULT_CAFILE" -k "$ROBOT_KEYTAB" \
  -o "$WORK/bt" --vaulttokenfile "$WORK/vt" "$ROBOT_PRINCIPAL"
echo
echo "== the token it wrote"
"$BIN" token "$WORK/bt" --verify --cafile "$VAULT_CAFILE"
echo
echo "== second run: the token is still fresh, so no KDC or Vault request is made"
time "$BIN" get -v -a "$VAULT_URL" --cafile "$VAULT_CAFILE" -k "$ROBOT_KEYTAB" \
  -o "$WORK/bt" --vaulttokenfile "$WORK/vt" "$ROBOT_PRINCIPAL"
echo
echo "demo files are in $WORK"
