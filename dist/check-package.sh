#!/bin/bash
# Package build check: builds the release binary, installs it with the
# packages' layout (dist/install.sh, the RPM spec's %install) into a clean
# directory root, and checks the file list, the links, the man pages and the
# systemd units. With --deb it also builds the .deb with cargo-deb and checks
# the file list of the unpacked package.
#
#   dist/check-package.sh [--deb]
#
# Needs: cargo; systemd-analyze (apt-get install systemd) for the unit check;
# for --deb, cargo-deb (cargo install cargo-deb --locked) and dpkg-deb.
set -euo pipefail

cd "$(dirname "$0")/.."
want_deb=no
[ "${1:-}" = "--deb" ] && want_deb=yes

fail() { echo "check-package: FAIL: $*" >&2; exit 1; }
need() { command -v "$1" >/dev/null || fail "'$1' is missing: $2"; }
need cargo "install Rust"
need systemd-analyze "apt-get install systemd (or dnf install systemd)"

start=$(date +%s)
cargo build --release --locked --bin robot-credmon
built=$(date +%s)
bin=${CARGO_TARGET_DIR:-target}/release/robot-credmon

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The files every package must install, relative to the root.
expected() {
    echo usr/bin/robot-credmon
    echo usr/bin/igwn-robot-get
    echo usr/bin/robot-credmon-storer
    for f in dist/man/*.1; do echo "usr/share/man/man1/$(basename "$f")"; done
    for p in robot-credmon igwn-robot-get; do
        echo "usr/share/bash-completion/completions/$p"
        echo "usr/share/zsh/site-functions/_$p"
        echo "usr/share/fish/vendor_completions.d/$p.fish"
    done
    for f in dist/systemd/*; do echo "usr/lib/systemd/system/$(basename "$f")"; done
    echo etc/robot-credmon/get.env
    echo etc/robot-credmon/credmon.env
    for f in condor-config/*; do [ -f "$f" ] && echo "etc/condor/config.d/$(basename "$f")"; done
    echo usr/share/doc/robot-credmon/operations.md
    [ -f README.md ] && echo usr/share/doc/robot-credmon/README.md
    return 0
}

# check_root ROOT LABEL: the file list and the programs of an installed tree.
check_root() {
    local root=$1 label=$2
    expected | sort > "$work/expected"
    # Man pages may be compressed by the packager.
    (cd "$root" && find . \( -type f -o -type l \) | sed 's|^\./||; s|\(man1/.*\.1\)\.gz$|\1|' | sort) > "$work/actual.$label"
    local missing extra
    missing=$(comm -23 "$work/expected" "$work/actual.$label")
    extra=$(comm -13 "$work/expected" "$work/actual.$label" | grep -v '^usr/share/doc/robot-credmon/' || true)
    [ -z "$missing" ] || fail "$label: missing from the package: $missing"
    [ -z "$extra" ] || fail "$label: unexpected files in the package: $extra"
    for link in igwn-robot-get robot-credmon-storer; do
        [ -L "$root/usr/bin/$link" ] || fail "$label: usr/bin/$link is not a symbolic link"
        [ "$(readlink "$root/usr/bin/$link")" = robot-credmon ] || fail "$label: usr/bin/$link does not point to robot-credmon"
    done
    "$root/usr/bin/robot-credmon" --version | grep -q '^robot-credmon ' || fail "$label: robot-credmon --version"
    "$root/usr/bin/igwn-robot-get" --version | grep -q '^igwn-robot-get ' || fail "$label: igwn-robot-get --version"
    # Units: systemd's own check, on copies (verify --root would need a whole
    # systemd tree in the root). The binary is checked above, so the only
    # complaint allowed is that /usr/bin/robot-credmon is not on this host.
    local units=() u
    rm -rf "$work/units" && mkdir "$work/units"
    for u in "$root"/usr/lib/systemd/system/*; do
        cp "$u" "$work/units/"
        case $u in *@.service) units+=("$work/units/$(basename "${u%@.service}")@robot.service") ;;
                   *@.timer) units+=("$work/units/$(basename "${u%@.timer}")@robot.timer") ;;
                   *) units+=("$work/units/$(basename "$u")") ;; esac
    done
    (cd "$work/units" && SYSTEMD_LOG_LEVEL=notice systemd-analyze verify --man=no "${units[@]}") > "$work/verify.$label" 2>&1 || true
    if grep -v -e 'Command /usr/bin/robot-credmon is not executable' -e '^$' "$work/verify.$label" | grep -q .; then
        cat "$work/verify.$label" >&2
        fail "$label: systemd-analyze verify complained"
    fi
    echo "check-package: $label: $(wc -l < "$work/actual.$label") files OK"
}

DESTDIR=$work/staged
dist/install.sh "$DESTDIR" "$bin"
check_root "$DESTDIR" staged
staged=$(date +%s)

if [ "$want_deb" = yes ]; then
    need dpkg-deb "apt-get install dpkg"
    cargo deb --version >/dev/null 2>&1 || fail "cargo-deb is missing: cargo install cargo-deb --locked"
    deb=$(cargo deb --no-build --no-strip --output "$work/" 2>"$work/deb.log" | tail -1) \
        || { cat "$work/deb.log" >&2; fail "cargo deb"; }
    [ -f "$deb" ] || { cat "$work/deb.log" >&2; fail "cargo deb made no package"; }
    dpkg-deb -x "$deb" "$work/deb-root"
    check_root "$work/deb-root" deb
    echo "check-package: $(basename "$deb"): $(dpkg-deb -f "$deb" Depends)"
fi
end=$(date +%s)
echo "check-package: build $((built - start)) s, staged check $((staged - built)) s, total $((end - start)) s"
