#!/bin/bash
# Package checks (CI runs `dist/check-package.sh --all` from scripts/test.sh):
#  * one release build, shared by everything below;
#  * third-party notices and the spec's License: match Cargo.lock;
#  * dist/install.sh into a clean root; systemd-analyze verify on the units,
#    and `systemd-analyze security --offline=true` no worse than MAX_EXPOSURE;
#  * --deb: dpkg-buildpackage (debhelper) makes robot-credmon and
#    robot-credmon-condor; lintian (errors fail; warnings must be overridden
#    in debian/*.lintian-overrides with a reason); file lists; conffiles;
#    maintainer scripts; HTCondor's own config parser on install and removal
#    (dist/check-condor-config.py);
#  * --rpm: vendor tarball (Linux only), rpmbuild -bb as EL9 builds
#    (dist/rpm/macros.el9: debuginfo, systemd macros), rpmlint, file lists,
#    and the same HTCondor configuration check.
#
#   dist/check-package.sh [--deb] [--rpm] [--all]
#
# Needs (scripts/install-deps.sh installs them): cargo, python3, systemd,
# debhelper, lintian, rpm, rpmlint, debugedit, and PyPI htcondor 25.x.
set -euo pipefail

cd "$(dirname "$0")/.."
want_deb=no want_rpm=no
for a in "$@"; do
    case $a in
        --deb) want_deb=yes ;;
        --rpm) want_rpm=yes ;;
        --all) want_deb=yes want_rpm=yes ;;
        *) echo "usage: dist/check-package.sh [--deb] [--rpm] [--all]" >&2; exit 2 ;;
    esac
done

# The highest `systemd-analyze security` exposure each unit may have (lower is
# better; docs/security.md). Lower a number when a unit gets tighter, never raise it.
declare -A MAX_EXPOSURE=(
    [robot-credmon-get@robot.service]=1.5
    [robot-credmon-credmon.service]=1.9
)

fail() { echo "check-package: FAIL: $*" >&2; exit 1; }
need() { command -v "$1" >/dev/null || fail "'$1' is missing: $2"; }
need cargo "install Rust (>= 1.89)"
need python3 "apt-get install python3"
need systemd-analyze "apt-get install systemd"
t() { date +%s; }

start=$(t)
# Cheap checks first: stale notices fail before the long release build.
python3 dist/third-party-licenses.py check || fail "third-party notices are stale"
cargo build --release --locked --bin robot-credmon
bin=$(realpath "${CARGO_TARGET_DIR:-target}/release/robot-credmon")
built=$(t)
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)

work=$(mktemp -d /tmp/robot-credmon-pkg.XXXXXX)
trap 'rm -rf "$work"' EXIT

# Files of each package, relative to the root.
main_files() {
    echo usr/bin/robot-credmon
    echo usr/bin/igwn-robot-get
    echo usr/bin/robot-credmon-storer
    for f in dist/man/*.1; do echo "usr/share/man/man1/$(basename "$f")"; done
    for p in robot-credmon igwn-robot-get robot-credmon-storer; do
        echo "usr/share/bash-completion/completions/$p"
        echo "usr/share/zsh/$1/_$p"
        echo "usr/share/fish/vendor_completions.d/$p.fish"
    done
    echo usr/lib/systemd/system/robot-credmon-get@.service
    echo usr/lib/systemd/system/robot-credmon-get@.timer
    echo etc/robot-credmon/get.env
    echo etc/logrotate.d/robot-credmon
    for f in README.md operations.md credmon.md htcondor.md troubleshooting.md; do echo "usr/share/doc/robot-credmon/$f"; done
    for f in condor-config/*.conf dist/env/*.env dist/prometheus/robot-credmon.rules.yml dist/grafana/robot-credmon.json; do
        echo "usr/share/doc/robot-credmon/examples/$(basename "$f")"
    done
}
condor_files() {
    echo etc/condor/config.d/50-robot-credmon.conf
    echo etc/condor/config.d/60-robot-credmon-submit.conf
    echo etc/robot-credmon/credmon.env
    for f in condor-config/*.conf; do echo "usr/share/robot-credmon/condor/$(basename "$f")"; done
    echo usr/lib/systemd/system/robot-credmon-credmon.service
}

# list ROOT: files and links, man pages without .gz, packaging boilerplate dropped.
list() {
    (cd "$1" && find . \( -type f -o -type l \) | sed 's|^\./||; s|^lib/systemd/|usr/lib/systemd/|; s|\(man1/.*\.1\)\.gz$|\1|; s|^\(usr/share/doc/.*\)\.gz$|\1|' \
        | grep -v -e '^usr/share/doc/robot-credmon[^/]*/\(changelog\|copyright\|THIRD-PARTY-LICENSES\)' \
                  -e '^usr/share/licenses/' -e '^usr/share/lintian/overrides/' -e '^usr/lib/debug/' -e '^usr/lib/.build-id/' \
        | sed 's|^usr/share/doc/robot-credmon-condor/|usr/share/doc/robot-credmon/|' | sort -u)
}

# check_files ROOT LABEL EXPECTED_FILE
check_files() {
    list "$1" > "$work/actual.$2"
    sort -u "$3" > "$work/expected.$2"
    local missing extra
    missing=$(comm -23 "$work/expected.$2" "$work/actual.$2")
    extra=$(comm -13 "$work/expected.$2" "$work/actual.$2")
    [ -z "$missing" ] || fail "$2: missing: $missing"
    [ -z "$extra" ] || fail "$2: unexpected files: $extra"
    echo "check-package: $2: $(wc -l < "$work/actual.$2") files as expected"
}

check_programs() {
    local root=$1 label=$2
    for link in igwn-robot-get robot-credmon-storer; do
        [ "$(readlink "$root/usr/bin/$link")" = robot-credmon ] || fail "$label: usr/bin/$link is not a link to robot-credmon"
    done
    "$root/usr/bin/robot-credmon" --version | grep -q "^robot-credmon $version" || fail "$label: robot-credmon --version"
    "$root/usr/bin/igwn-robot-get" --version | grep -q '^igwn-robot-get ' || fail "$label: igwn-robot-get --version"
}

# Units: systemd's own check, on copies (a template needs an instance name).
check_units() {
    local root=$1 label=$2 units=() u
    rm -rf "$work/units" && mkdir "$work/units"
    for u in "$root"/usr/lib/systemd/system/* "$root"/lib/systemd/system/*; do
        [ -e "$u" ] || continue
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
    echo "check-package: $label: systemd-analyze verify: ${#units[@]} units OK"
    local name score
    for name in "${!MAX_EXPOSURE[@]}"; do
        [ -e "$work/units/$name" ] || cp "$work/units/${name%@*}@.service" "$work/units/$name" 2>/dev/null \
            || fail "$label: no unit $name"
        score=$(cd "$work/units" && systemd-analyze security --offline=true --no-pager "$name" 2>/dev/null \
            | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
        [ -n "$score" ] || fail "$label: systemd-analyze security gave no score for $name"
        awk -v s="$score" -v m="${MAX_EXPOSURE[$name]}" 'BEGIN { exit !(s <= m) }' \
            || fail "$label: $name: exposure $score is worse than ${MAX_EXPOSURE[$name]} (systemd-analyze security --offline=true)"
        echo "check-package: $label: $name: exposure $score (at most ${MAX_EXPOSURE[$name]})"
    done
}

# The staged layout (what both packages are made of).
dist/install.sh "$work/staged" "$bin"
{ main_files vendor-completions; condor_files; } > "$work/expected.staged.in"
check_files "$work/staged" staged "$work/expected.staged.in"
check_programs "$work/staged" staged
check_units "$work/staged" staged
staged=$(t)

if [ "$want_deb" = yes ]; then
    need dpkg-buildpackage "apt-get install dpkg-dev debhelper"
    need dh "apt-get install debhelper"
    need lintian "apt-get install lintian"
    # Build from a copy of the tree (dpkg-buildpackage writes next to it).
    src="$work/deb/robot-credmon-$version"
    mkdir -p "$src"
    git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$src"
    # -d: the Rust toolchain is rustup's, not Debian's cargo (Build-Depends).
    (cd "$src" && ROBOT_CREDMON_BINARY="$bin" dpkg-buildpackage -b -us -uc -d) > "$work/deb.log" 2>&1 \
        || { tail -40 "$work/deb.log" >&2; fail "dpkg-buildpackage"; }
    changes=$(ls "$work"/deb/robot-credmon_*.changes)
    lintian --fail-on error,warning --display-info --tag-display-limit 0 "$changes" > "$work/lintian.log" 2>&1 \
        || { cat "$work/lintian.log" >&2; fail "lintian (fix it, or override with a reason in debian/*.lintian-overrides)"; }
    grep -v -e '^N:' -e '^running with root' "$work/lintian.log" | sed 's/^/lintian: /' || true
    echo "check-package: lintian: no errors or warnings"
    for pkg in robot-credmon robot-credmon-condor; do
        deb=$(ls "$work"/deb/${pkg}_*.deb)
        dpkg-deb -x "$deb" "$work/root.$pkg"
        dpkg-deb -e "$deb" "$work/ctrl.$pkg"
        touch "$work/ctrl.$pkg/conffiles"
        echo "check-package: $(basename "$deb"): Depends: $(dpkg-deb -f "$deb" Depends); Conflicts: $(dpkg-deb -f "$deb" Conflicts)"
    done
    main_files vendor-completions > "$work/expected.deb-main.in"
    check_files "$work/root.robot-credmon" deb-robot-credmon "$work/expected.deb-main.in"
    condor_files > "$work/expected.deb-condor.in"
    check_files "$work/root.robot-credmon-condor" deb-robot-credmon-condor "$work/expected.deb-condor.in"
    check_programs "$work/root.robot-credmon" deb
    grep -q '^robot-credmon (= ' <<<"$(dpkg-deb -f "$work"/deb/robot-credmon-condor_*.deb Depends | tr ',' '\n' | sed 's/^ //')" \
        || fail "robot-credmon-condor must depend on the exact version of robot-credmon"
    [ -f "$work/ctrl.robot-credmon/prerm" ] && grep -q 'robot-credmon-get@' "$work/ctrl.robot-credmon/prerm" \
        || fail "robot-credmon has no prerm stopping the get@ instances"
    [ -f "$work/ctrl.robot-credmon/postrm" ] && grep -q 'daemon-reload' "$work/ctrl.robot-credmon/postrm" \
        || fail "robot-credmon has no postrm with daemon-reload"
    if grep -qE 'systemctl (--[a-z-]+ )*(enable|start)|deb-systemd-invoke (--[a-z-]+ )*start' "$work"/ctrl.*/postinst 2>/dev/null; then
        fail "a postinst enables or starts a unit"
    fi
    python3 dist/check-condor-config.py "$work/root.robot-credmon" "$work/root.robot-credmon-condor" \
        "$work/ctrl.robot-credmon-condor/conffiles" "$work/ctrl.robot-credmon/conffiles"
fi
debs=$(t)

if [ "$want_rpm" = yes ]; then
    need rpmbuild "apt-get install rpm"
    need rpmlint "apt-get install rpmlint"
    need find-debuginfo "apt-get install debugedit"
    top="$work/rpm"
    mkdir -p "$top"/{SOURCES,SPECS,BUILD,RPMS,SRPMS}
    git ls-files -z --cached --others --exclude-standard \
        | tar --null -T - --transform "s|^|robot-credmon-$version/|" -czf "$top/SOURCES/robot-credmon-$version.tar.gz"
    dist/vendor-tarball.sh "$top/SOURCES/robot-credmon-$version-vendor.tar.gz" >/dev/null
    # --nodeps: the build host is Debian; the toolchain is rustup's.
    rpmbuild -bb --nodeps --load dist/rpm/macros.el9 --define "_topdir $top" \
        --define "_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm" \
        dist/robot-credmon.spec > "$work/rpm.log" 2>&1 || { tail -40 "$work/rpm.log" >&2; fail "rpmbuild -bb"; }
    ls "$top"/RPMS/robot-credmon-debuginfo-*.rpm >/dev/null 2>&1 || fail "no debuginfo package was built"
    rpmlint -c dist/rpm/rpmlint.toml "$top"/RPMS/*.rpm > "$work/rpmlint.log" 2>&1 \
        || { cat "$work/rpmlint.log" >&2; fail "rpmlint"; }
    tail -1 "$work/rpmlint.log" | sed 's/^/rpmlint: /'
    for pkg in robot-credmon robot-credmon-condor; do
        rpm=$(ls "$top"/RPMS/$pkg-$version-*.rpm)
        mkdir -p "$work/rroot.$pkg"
        (cd "$work/rroot.$pkg" && rpm2cpio "$rpm" | cpio -idm --quiet)
        rpm -qp --configfiles "$rpm" 2>/dev/null > "$work/rconf.$pkg"
        echo "check-package: $(basename "$rpm"): $(rpm -qp --qf '%{LICENSE}' "$rpm" | cut -c1-60)...; requires: $(rpm -qp --requires "$rpm" 2>/dev/null | grep -v '^rpmlib\|^/bin/sh\|^systemd' | tr '\n' ' ')"
    done
    main_files site-functions > "$work/expected.rpm-main.in"
    check_files "$work/rroot.robot-credmon" rpm-robot-credmon "$work/expected.rpm-main.in"
    condor_files > "$work/expected.rpm-condor.in"
    check_files "$work/rroot.robot-credmon-condor" rpm-robot-credmon-condor "$work/expected.rpm-condor.in"
    check_programs "$work/rroot.robot-credmon" rpm
    [ -f "$work/rroot.robot-credmon/usr/share/licenses/robot-credmon/THIRD-PARTY-LICENSES" ] || fail "rpm: no %license THIRD-PARTY-LICENSES"
    python3 dist/check-condor-config.py "$work/rroot.robot-credmon" "$work/rroot.robot-credmon-condor" \
        "$work/rconf.robot-credmon-condor" "$work/rconf.robot-credmon"
fi
end=$(t)
echo "check-package: release build $((built - start)) s, staged $((staged - built)) s, deb $((debs - staged)) s, rpm $((end - debs)) s, total $((end - start)) s"
