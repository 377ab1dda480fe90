#!/bin/bash
# Vendored crates for the offline RPM build, limited to the Linux targets:
# `cargo vendor` copies the crates of every platform in Cargo.lock; those not
# needed to build robot-credmon on x86_64/aarch64 Linux (Windows, macOS,
# WASM crates, and the dev-dependencies) keep only their Cargo.toml and an
# empty lib.rs, so that cargo can still resolve the lock file offline.
#   dist/vendor-tarball.sh OUT.tar.gz
set -euo pipefail
out=$(realpath -m "${1:?usage: dist/vendor-tarball.sh OUT.tar.gz}")
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cargo vendor --locked --versioned-dirs "$work/vendor" >/dev/null 2>"$work/vendor.log" \
    || { cat "$work/vendor.log" >&2; exit 1; }
python3 - "$work/vendor" <<'PY'
import json, os, shutil, subprocess, sys
vendor = sys.argv[1]
keep = set()
for target in ["x86_64-unknown-linux-gnu", "aarch64-unknown-linux-gnu"]:
    meta = json.loads(subprocess.check_output(
        ["cargo", "metadata", "--locked", "--format-version", "1", "--filter-platform", target]))
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
            # Dev-dependencies of robot-credmon itself are not built by the RPM.
            if pid == root and kinds == {"dev"}:
                continue
            todo.append(dep["pkg"])
    keep |= {f"{pkgs[p]['name']}-{pkgs[p]['version']}" for p in seen}
stubbed = 0
for d in sorted(os.listdir(vendor)):
    if d in keep:
        continue
    path = os.path.join(vendor, d)
    with open(os.path.join(path, ".cargo-checksum.json")) as f:
        package_sum = json.load(f).get("package")
    for entry in os.listdir(path):
        if entry != "Cargo.toml":
            p = os.path.join(path, entry)
            shutil.rmtree(p) if os.path.isdir(p) and not os.path.islink(p) else os.remove(p)
    os.makedirs(os.path.join(path, "src"))
    open(os.path.join(path, "src", "lib.rs"), "w").close()
    with open(os.path.join(path, ".cargo-checksum.json"), "w") as f:
        json.dump({"files": {}, "package": package_sum}, f)
    stubbed += 1
print(f"vendor: {len(os.listdir(vendor)) - stubbed} crates kept, {stubbed} other-platform or dev-only crates stubbed", file=sys.stderr)
PY
tar -C "$work" -czf "$out" vendor
echo "$out"
