#!/bin/bash
# Installs robot-credmon into a staging root, in the layout of both packages
# (the RPM spec's %install runs this; Cargo.toml's [package.metadata.deb]
# lists the same files). Usage:
#   dist/install.sh DESTDIR [BINARY]     (BINARY: target/release/robot-credmon)
set -euo pipefail

destdir=${1:?usage: dist/install.sh DESTDIR [BINARY]}
binary=${2:-target/release/robot-credmon}
here=$(cd "$(dirname "$0")/.." && pwd)
bindir=${BINDIR:-/usr/bin}
mandir=${MANDIR:-/usr/share/man}
unitdir=${UNITDIR:-/usr/lib/systemd/system}
docdir=${DOCDIR:-/usr/share/doc/robot-credmon}

[ -x "$binary" ] || { echo "install.sh: no executable '$binary' (run cargo build --release first)" >&2; exit 1; }

install -D -m 0755 "$binary" "$destdir$bindir/robot-credmon"
ln -sfn robot-credmon "$destdir$bindir/igwn-robot-get"
ln -sfn robot-credmon "$destdir$bindir/robot-credmon-storer"

install -d -m 0755 "$destdir$mandir/man1"
install -m 0644 "$here"/dist/man/*.1 "$destdir$mandir/man1/"

for prog in robot-credmon igwn-robot-get; do
    install -D -m 0644 "$here/dist/completions/$prog.bash" "$destdir/usr/share/bash-completion/completions/$prog"
    install -D -m 0644 "$here/dist/completions/_$prog" "$destdir/usr/share/zsh/site-functions/_$prog"
    install -D -m 0644 "$here/dist/completions/$prog.fish" "$destdir/usr/share/fish/vendor_completions.d/$prog.fish"
done

install -d -m 0755 "$destdir$unitdir"
install -m 0644 "$here"/dist/systemd/*.service "$here"/dist/systemd/*.timer "$destdir$unitdir/"

install -D -m 0644 "$here/dist/env/get.env" "$destdir/etc/robot-credmon/get.env"
install -D -m 0644 "$here/dist/env/credmon.env" "$destdir/etc/robot-credmon/credmon.env"

install -d -m 0755 "$destdir/etc/condor/config.d"
shopt -s nullglob
for f in "$here"/condor-config/*; do
    [ -f "$f" ] && install -m 0644 "$f" "$destdir/etc/condor/config.d/"
done

install -d -m 0755 "$destdir$docdir"
for f in README.md docs/operations.md; do
    [ -f "$here/$f" ] && install -m 0644 "$here/$f" "$destdir$docdir/"
done
exit 0
