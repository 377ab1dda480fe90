#!/usr/bin/env python3
"""Third-party notices for the robot-credmon binary, from Cargo.lock.

Uses `cargo metadata --locked --filter-platform <linux target>` (cargo's own,
maintained view of the lock file) to find every crate linked into the
binary: normal (not dev) dependencies reachable from robot-credmon on Linux.
Writes, for each crate, its name, version, SPDX licence expression and the
licence/notice files it ships, and prints the combined SPDX expression that
the RPM `License:` tag must carry.

  dist/third-party-licenses.py write   # regenerate dist/licenses/THIRD-PARTY-LICENSES
  dist/third-party-licenses.py check   # fail when it or the spec's License: is stale
  dist/third-party-licenses.py spdx    # print the combined expression
"""
import json
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
OUT = os.path.join(HERE, "licenses", "THIRD-PARTY-LICENSES")
SPEC = os.path.join(HERE, "robot-credmon.spec")
TARGETS = ["x86_64-unknown-linux-gnu", "aarch64-unknown-linux-gnu"]
NOTICE_FILE = re.compile(r"^(LICEN[CS]E|COPYING|NOTICE|UNLICENSE)", re.I)


def linked_packages():
    """Package ids linked into the binary on either Linux target."""
    found = {}
    for target in TARGETS:
        meta = json.loads(subprocess.check_output(
            ["cargo", "metadata", "--locked", "--format-version", "1",
             "--filter-platform", target],
            cwd=ROOT))
        nodes = {n["id"]: n for n in meta["resolve"]["nodes"]}
        pkgs = {p["id"]: p for p in meta["packages"]}
        root = meta["resolve"]["root"]
        todo, seen = [root], set()
        while todo:
            pid = todo.pop()
            if pid in seen:
                continue
            seen.add(pid)
            for dep in nodes[pid]["deps"]:
                kinds = {k["kind"] for k in dep["dep_kinds"]}
                # None: normal dependency; "build": build scripts (not linked).
                if None in kinds:
                    todo.append(dep["pkg"])
        for pid in seen:
            if pid != root:
                found[pid] = pkgs[pid]
    return sorted(found.values(), key=lambda p: (p["name"], p["version"]))


def notice_files(pkg):
    d = os.path.dirname(pkg["manifest_path"])
    names = sorted(f for f in os.listdir(d) if NOTICE_FILE.match(f) and os.path.isfile(os.path.join(d, f)))
    if pkg.get("license_file"):
        lf = os.path.normpath(os.path.join(d, pkg["license_file"]))
        if os.path.isfile(lf) and os.path.basename(lf) not in names:
            names.append(os.path.relpath(lf, d))
    return [(n, open(os.path.join(d, n), encoding="utf-8", errors="replace").read()) for n in names]


def normalise(expr):
    """Cargo's legacy `A/B` means `A OR B`; a plain choice is put in a fixed order."""
    e = " OR ".join(p.strip() for p in expr.split("/")) if "/" in expr else expr.strip()
    parts = e.split(" OR ")
    if len(parts) > 1 and all(re.fullmatch(r"[A-Za-z0-9.+-]+", x) for x in parts):
        return " OR ".join(sorted(parts))
    return e


def combined(pkgs):
    exprs = {"Apache-2.0"}  # robot-credmon itself
    for p in pkgs:
        e = normalise(p.get("license") or "LicenseRef-unknown")
        exprs.add(f"({e})" if " " in e else e)
    return " AND ".join(sorted(exprs))


def render(pkgs):
    out = ["Third-party software linked into robot-credmon",
           "================================================",
           "",
           "Generated from Cargo.lock by dist/third-party-licenses.py; do not edit.",
           f"Combined licence (SPDX): {combined(pkgs)}",
           ""]
    for p in pkgs:
        out.append(f"{p['name']} {p['version']}: {normalise(p.get('license') or 'unknown')}")
    out.append("")
    # Each distinct licence text once, with the crates that ship it.
    texts = {}
    for p in pkgs:
        for name, text in notice_files(p):
            texts.setdefault(text.strip(), []).append(f"{p['name']} {p['version']} ({name})")
    without = [f"{p['name']} {p['version']}" for p in pkgs if not notice_files(p)]
    if without:
        out.append("Crates that ship no licence file (their licence is the expression above):")
        out.append("  " + ", ".join(without))
        out.append("")
    for text, owners in sorted(texts.items(), key=lambda kv: kv[1][0]):
        out.append("-" * 78)
        out.append("Shipped by: " + ", ".join(owners))
        out.append("")
        out.append(text)
        out.append("")
    return "\n".join(out) + "\n"


def spec_license():
    for line in open(SPEC, encoding="utf-8"):
        if line.startswith("License:"):
            return line.split(":", 1)[1].strip()
    return None


def main():
    what = sys.argv[1] if len(sys.argv) > 1 else "check"
    pkgs = linked_packages()
    if what == "spdx":
        print(combined(pkgs))
        return 0
    text = render(pkgs)
    if what == "write":
        os.makedirs(os.path.dirname(OUT), exist_ok=True)
        with open(OUT, "w", encoding="utf-8") as f:
            f.write(text)
        print(f"wrote {OUT}: {len(pkgs)} crates; License: {combined(pkgs)}")
        return 0
    ok = True
    current = open(OUT, encoding="utf-8").read() if os.path.exists(OUT) else ""
    if current != text:
        print(f"{OUT} does not match Cargo.lock: run dist/third-party-licenses.py write", file=sys.stderr)
        ok = False
    if spec_license() != combined(pkgs):
        print(f"the License: of {SPEC} is not the combined licence of Cargo.lock:\n  {combined(pkgs)}", file=sys.stderr)
        ok = False
    if ok:
        print(f"third-party notices: {len(pkgs)} crates match Cargo.lock")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
