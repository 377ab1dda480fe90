#!/usr/bin/env bash
# Demo on an embedded default: starts a throwaway MIT KDC and the test Vault
# on loopback, then
#  1. `robot-credmon get` writes a real token, shows its claims, and returns
#     at once the second time (a fresh token costs nothing);
#  2. the credmon: a credential directory laid out as HTCondor's credd makes
#     it, a `.use` near expiry renewed, a new credential's `.use` written
#     milliseconds after the SIGHUP, and `robot-credmon status`.
# `scripts/demo.sh --pool` then also starts a real HTCondor personal pool
# (HTCONDOR_PREFIX, or condor_master on PATH) and runs a job that prints its
# token's claims. Run as root (the credmon writes root-owned files).
set -euo pipefail
cd "$(dirname "$0")/.."
pool=false
case "${1:-}" in
  --pool) pool=true ;;
  "") ;;
  *) echo "usage: scripts/demo.sh [--pool]" >&2; exit 2 ;;
esac
if $pool && [ -z "${HTCONDOR_PREFIX:-}" ] && ! command -v condor_master >/dev/null; then
  echo "demo.sh: --pool needs HTCondor 25: set HTCONDOR_PREFIX or put condor_master on PATH" >&2
  exit 1
fi
scripts/install-deps.sh
examples=(--example test-vault)
$pool && examples+=(--example demo-pool)
cargo build --release --locked --bin robot-credmon "${examples[@]}" 2>&1 | tail -n 1
BIN=$PWD/target/release/robot-credmon
WORK=$(mktemp -d /tmp/robot-credmon-demo.XXXXXX)
chmod 755 "$WORK"
target/release/examples/test-vault "$WORK" --serve-seconds 300 --credentials 2 >"$WORK/env.sh" 2>"$WORK/vault.log" &
for _ in $(seq 1 200); do grep -q VAULT_PID "$WORK/env.sh" 2>/dev/null && break; sleep 0.05; done
# shellcheck disable=SC1091
source "$WORK/env.sh"
CREDMON_PID=
cleanup() {
  [ -n "$CREDMON_PID" ] && kill "$CREDMON_PID" 2>/dev/null
  kill "$VAULT_PID" 2>/dev/null || true
}
trap cleanup EXIT

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

# ---- the credmon ------------------------------------------------------------
CRED=$WORK/oauth_credentials
vault_port=${VAULT_URL##*:}
# Two credentials the test Vault knows (credkey, vault_url, Vault token per line).
mapfile -t creds <"$VAULT_CREDENTIALS"
# HTCondor's packages create the condor account; the demo makes one when it is missing.
if ! getent group condor >/dev/null; then
  useradd --system --user-group --no-create-home --shell /usr/sbin/nologin condor
fi
echo "== a credential directory as HTCondor's credd makes it: root:condor 02770, user directories condor 0700"
install -d -m 2770 -o root -g condor "$CRED"
# The credd stores <user>/<service>.top (root, 0600) in the storer's JSON.
store_top() { # user credential-line
  local user=$1 url token
  url=$(cut -f2 <<<"$2"); token=$(cut -f3 <<<"$2")
  install -d -m 0700 -o condor -g condor "$CRED/$user"
  (umask 077; printf '{"vault_token": "%s", "vault_url": "%s"}\n' "$token" "$url" >"$CRED/$user/igwn.top.tmp")
  mv "$CRED/$user/igwn.top.tmp" "$CRED/$user/igwn.top"
}
store_top bob "${creds[1]}"
# bob already has a .use, valid for five more minutes (under CREDMON_OAUTH_TOKEN_MINIMUM, 40 min).
b64url() { base64 -w0 | tr '+/' '-_' | tr -d '='; }
exp=$(($(date +%s) + 300))
printf '%s.%s.c2ln\n' "$(printf '{"alg":"RS256","typ":"JWT"}' | b64url)" \
  "$(printf '{"sub":"bench1/host.example","exp":%d}' "$exp" | b64url)" >"$CRED/bob/igwn.use"
chmod 0400 "$CRED/bob/igwn.use"
sed 's/"vault_token": "[^"]*"/"vault_token": "(a Vault token)"/' "$CRED/bob/igwn.top"
echo "bob/igwn.use before the credmon: $("$BIN" token "$CRED/bob/igwn.use" | grep -m1 '^remaining')"
echo
echo "== the credmon starts (as condor_master would start CREDMON_OAUTH)"
export _CONDOR_AUTH_SSL_CLIENT_CAFILE=$VAULT_CAFILE
export _CONDOR_ROBOT_CREDMON_ALLOWED_VAULT_PORTS=$vault_port
export _CONDOR_ROBOT_CREDMON_STATE_INTERVAL=1
"$BIN" credmon -c "$CRED" -l "$WORK/CredMonOAuthLog" --metrics-file "$WORK/credmon.prom" &
CREDMON_PID=$!
for _ in $(seq 1 200); do [ -e "$CRED/CREDMON_COMPLETE" ] && break; sleep 0.05; done
echo "bob/igwn.use after its first pass: $("$BIN" token "$CRED/bob/igwn.use" | grep -m1 '^remaining')"
grep 'refreshed bob/igwn' "$WORK/CredMonOAuthLog"
echo
echo "== alice submits: the credd writes alice/igwn.top and sends SIGHUP to the pid in $CRED/pid"
store_top alice "${creds[0]}"
pid=$(cat "$CRED/pid")
n=0
t0=$(date +%s%N)
kill -HUP "$pid"
until [ -e "$CRED/alice/igwn.use" ] || ((++n > 5000000)); do :; done
t1=$(date +%s%N)
echo "alice/igwn.use written $(((t1 - t0) / 1000000)) ms after the SIGHUP"
ls -lR "$CRED" | sed "s|$CRED|\$CRED|"
echo
sleep 1.2 # the state file is written at most once a second here (ROBOT_CREDMON_STATE_INTERVAL)
echo "== robot-credmon status -c \$CRED"
"$BIN" status -c "$CRED"
echo
echo "== robot-credmon check --credmon \$CRED (the Nagios/Icinga plugin)"
"$BIN" check --credmon "$CRED" || true
echo
echo "== the credmon stops; status still shows every credential, and says so"
kill "$CREDMON_PID"; wait "$CREDMON_PID" || true; CREDMON_PID=
"$BIN" status -c "$CRED"

if $pool; then
  echo
  echo "== --pool: a real HTCondor personal pool, robot-credmon as its CREDMON_OAUTH, and a job"
  target/release/examples/demo-pool "$BIN"
fi
echo
echo "demo files are in $WORK"
