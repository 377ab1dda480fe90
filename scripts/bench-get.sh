#!/usr/bin/env bash
# Benchmark of `robot-credmon get` (numbers go to docs/performance.md):
#  (a) fast path: the token file is fresh, so nothing but a file read happens;
#  (b) cold run: no Vault token and no ccache: KDC AS+TGS exchange, TLS
#      handshake, Kerberos login, token exchange and bearer read on loopback.
# Uses hyperfine for wall time and GNU time for peak RSS. Run as root or any user.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v hyperfine >/dev/null || apt-get install -y -q hyperfine >/dev/null
[ -x /usr/bin/time ] || apt-get install -y -q time >/dev/null
cargo build --release --locked --bin robot-credmon --example test-vault 2>&1 | tail -n 1
BIN=$PWD/target/release/robot-credmon
WORK=$(mktemp -d /tmp/robot-credmon-bench.XXXXXX)
target/release/examples/test-vault "$WORK/vault" --serve-seconds 600 >"$WORK/env.sh" 2>"$WORK/vault.log" &
for _ in $(seq 1 200); do grep -q VAULT_PID "$WORK/env.sh" 2>/dev/null && break; sleep 0.05; done
# shellcheck disable=SC1091
source "$WORK/env.sh"
trap 'kill "$VAULT_PID" 2>/dev/null || true; rm -rf "$WORK"' EXIT
GET=("$BIN" get -a "$VAULT_URL" --cafile "$VAULT_CAFILE" -k "$ROBOT_KEYTAB" -o "$WORK/bt" --vaulttokenfile "$WORK/vt" "$ROBOT_PRINCIPAL")
"${GET[@]}"

echo "== (a) fast path, token fresh"
# Proof of zero requests: the same run against an unreachable server and a
# Kerberos configuration that does not exist still succeeds.
KRB5_CONFIG=/nonexistent "$BIN" get -a https://127.0.0.1:1 -k "$ROBOT_KEYTAB" -o "$WORK/bt" --vaulttokenfile "$WORK/vt" "$ROBOT_PRINCIPAL"
echo "fast path with no reachable KDC or Vault: ok (0 requests)"
hyperfine -N --warmup 50 --runs 1000 --export-json "$WORK/fast.json" "${GET[*]}" | sed -n '1,4p'
/usr/bin/time -f "peak RSS %M KiB" "${GET[@]}"

echo "== (b) cold run: no Vault token, no ccache"
hyperfine -N --warmup 3 --runs 100 --prepare "rm -f $WORK/bt $WORK/vt" --export-json "$WORK/cold.json" "${GET[*]}" | sed -n '1,4p'
rm -f "$WORK/bt" "$WORK/vt"
/usr/bin/time -f "peak RSS %M KiB" "${GET[@]}"
python3 - "$WORK/fast.json" "$WORK/cold.json" <<'PY'
import json, sys
for name, f in zip(["fast path", "cold run"], sys.argv[1:]):
    r = json.load(open(f))["results"][0]
    print(f"{name}: median {r['median']*1000:.2f} ms, mean {r['mean']*1000:.2f} ms, min {r['min']*1000:.2f} ms, max {r['max']*1000:.2f} ms")
PY
