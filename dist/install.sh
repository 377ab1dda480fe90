#!/bin/bash
# Installs robot-credmon into a staging root in the layout of both packages
# (the RPM spec's %install and debian/rules run this). Usage:
#   dist/install.sh DESTDIR [BINARY]     (BINARY: target/release/robot-credmon)
#
# robot-credmon:        the program and its links, man pages, completions,
#                       the get@ units, /etc/robot-credmon/get.env, logrotate,
#                       docs and examples (no active HTCondor configuration);
# robot-credmon-condor: /etc/condor/config.d/{50,60}-*.conf (include lines),
#                       /usr/share/robot-credmon/condor/ (the knobs), the
#                       credmon unit and /etc/robot-credmon/credmon.env.
# dist/check-package.sh knows which file goes into which package.
set -euo pipefail

destdir=${1:?usage: dist/install.sh DESTDIR [BINARY]}
binary=${2:-target/release/robot-credmon}
here=$(cd "$(dirname "$0")/.." && pwd)
bindir=${BINDIR:-/usr/bin}
mandir=${MANDIR:-/usr/share/man}
unitdir=${UNITDIR:-/usr/lib/systemd/system}
docdir=${DOCDIR:-/usr/share/doc/robot-credmon}
datadir=${DATADIR:-/usr/share}
# Debian's zsh looks in vendor-completions, Fedora/EL's in site-functions.
zshdir=${ZSHDIR:-$datadir/zsh/vendor-completions}

[ -x "$binary" ] || { echo "install.sh: no executable '$binary' (run cargo build --release first)" >&2; exit 1; }

install -D -m 0755 "$binary" "$destdir$bindir/robot-credmon"
ln -sfn robot-credmon "$destdir$bindir/igwn-robot-get"
ln -sfn robot-credmon "$destdir$bindir/robot-credmon-storer"

install -d -m 0755 "$destdir$mandir/man1"
install -m 0644 "$here"/dist/man/*.1 "$destdir$mandir/man1/"

for prog in robot-credmon igwn-robot-get robot-credmon-storer; do
    install -D -m 0644 "$here/dist/completions/$prog.bash" "$destdir$datadir/bash-completion/completions/$prog"
    install -D -m 0644 "$here/dist/completions/_$prog" "$destdir$zshdir/_$prog"
    install -D -m 0644 "$here/dist/completions/$prog.fish" "$destdir$datadir/fish/vendor_completions.d/$prog.fish"
done

install -d -m 0755 "$destdir$unitdir"
install -m 0644 "$here"/dist/systemd/*.service "$here"/dist/systemd/*.timer "$destdir$unitdir/"

install -D -m 0644 "$here/dist/env/get.env" "$destdir/etc/robot-credmon/get.env"
install -D -m 0644 "$here/dist/env/credmon.env" "$destdir/etc/robot-credmon/credmon.env"
install -D -m 0644 "$here/dist/logrotate/robot-credmon" "$destdir/etc/logrotate.d/robot-credmon"

# robot-credmon-condor: the knobs under /usr/share, the entry points in /etc.
install -d -m 0755 "$destdir$datadir/robot-credmon/condor" "$destdir/etc/condor/config.d"
install -m 0644 "$here"/condor-config/*.conf "$destdir$datadir/robot-credmon/condor/"
install -m 0644 "$here"/dist/condor-etc/*.conf "$destdir/etc/condor/config.d/"

install -d -m 0755 "$destdir$docdir/examples"
for f in README.md docs/operations.md docs/credmon.md docs/htcondor.md docs/troubleshooting.md; do
    install -m 0644 "$here/$f" "$destdir$docdir/"
done
install -m 0644 "$here"/condor-config/*.conf "$here"/dist/env/*.env "$destdir$docdir/examples/"
# Prometheus alert rules and a Grafana dashboard for the metrics files (examples).
install -m 0644 "$here/dist/prometheus/robot-credmon.rules.yml" "$here/dist/grafana/robot-credmon.json" "$destdir$docdir/examples/"
install -m 0644 "$here/dist/licenses/THIRD-PARTY-LICENSES" "$destdir$docdir/"
exit 0
