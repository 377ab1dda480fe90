#!/usr/bin/env python3
"""What the packages do to an HTCondor configuration, read by HTCondor's own
config parser (the htcondor2 Python bindings from PyPI, 25.x).

  dist/check-condor-config.py MAIN_ROOT CONDOR_ROOT CONDOR_CONFFILES MAIN_CONFFILES

MAIN_ROOT and CONDOR_ROOT are the unpacked robot-credmon and
robot-credmon-condor packages; the CONFFILES files list the paths the
package manager keeps on removal (dpkg conffiles / RPM %config). In a clean
root holding a site configuration it checks that
  1. installing robot-credmon alone changes no knob;
  2. installing robot-credmon-condor enables the credmon, and every knob
     that names a file of ours names one the packages install;
  3. removing robot-credmon-condor (its conffiles stay, as with dpkg -r)
     restores the site configuration exactly, so no knob points at a
     missing file; and so does removing both packages.
The parser runs in a private mount namespace in which the root's
/usr/share/robot-credmon is mounted at its real place (the /etc entry
points include it by absolute path), so the host is never touched.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

SITE = """\
# A site's configuration: an access point with a schedd and a startd.
DAEMON_LIST = MASTER SCHEDD STARTD
SEC_DEFAULT_ENCRYPTION = OPTIONAL
"""


def fail(msg):
    print(f"check-condor-config: FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def files_of(tree):
    out = []
    for d, _, names in os.walk(tree):
        for n in names:
            out.append(os.path.relpath(os.path.join(d, n), tree))
    return sorted(out)


def copy_tree(src, root):
    for d, dirs, names in os.walk(src):
        rel = os.path.relpath(d, src)
        os.makedirs(os.path.join(root, rel), exist_ok=True)
        for n in names:
            s = os.path.join(d, n)
            t = os.path.join(root, rel, n)
            if os.path.lexists(t):
                os.remove(t)
            if os.path.islink(s):
                os.symlink(os.readlink(s), t)
            else:
                shutil.copy2(s, t)


def remove_package(src, root, keep):
    for rel in files_of(src):
        if "/" + rel in keep:
            continue
        p = os.path.join(root, rel)
        if os.path.lexists(p):
            os.remove(p)


DUMP = r"""
import json, sys
import htcondor2
print(json.dumps({k: htcondor2.param.get(k) for k in htcondor2.param.keys()}))
"""


def dump(root):
    """Every knob as HTCondor's parser sees the configuration in `root`."""
    share = os.path.join(root, "usr/share/robot-credmon")
    script = (
        "set -e; mount -t tmpfs robot-credmon-check /usr/share; "
        "mkdir -p /usr/share/robot-credmon; "
        f"if [ -d '{share}' ]; then mount --bind '{share}' /usr/share/robot-credmon; fi; "
        f"exec '{sys.executable}' -c \"$0\""
    )
    env = dict(os.environ, CONDOR_CONFIG=os.path.join(root, "condor_config"))
    env.pop("_CONDOR_LOCAL_CONFIG_DIR", None)
    r = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script, DUMP],
                       env=env, capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        fail(f"HTCondor's config parser failed (pip install 'htcondor>=25,<26'; needs root for unshare):\n{r.stderr}")
    knobs = json.loads(r.stdout)
    # Knobs that name the root itself move with it; compare them by name only.
    return {k: v for k, v in knobs.items() if k not in ("CONDOR_CONFIG", "LOCAL_CONFIG_DIR", "LOCAL_DIR")}


VOLATILE = set()


def diff(a, b):
    keys = sorted((set(a) | set(b)) - VOLATILE)
    return [f"{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in keys if a.get(k) != b.get(k)]


def main():
    if len(sys.argv) != 5:
        fail("usage: check-condor-config.py MAIN_ROOT CONDOR_ROOT CONDOR_CONFFILES MAIN_CONFFILES")
    main_tree, condor_tree, condor_conf, main_conf = sys.argv[1:]
    keep_condor = {l.strip() for l in open(condor_conf) if l.strip()}
    keep_main = {l.strip() for l in open(main_conf) if l.strip()}
    root = tempfile.mkdtemp(prefix="condor-config-check.")
    try:
        os.makedirs(os.path.join(root, "etc/condor/config.d"))
        os.makedirs(os.path.join(root, "local"))
        with open(os.path.join(root, "condor_config"), "w") as f:
            f.write(f"LOCAL_DIR = {root}/local\nLOCAL_CONFIG_DIR = {root}/etc/condor/config.d\n")
        with open(os.path.join(root, "etc/condor/config.d/00-site.conf"), "w") as f:
            f.write(SITE)
        baseline = dump(root)
        # Knobs that change between two reads of the same files (PID,
        # $RANDOM_INTEGER() ...) are not the packages' doing.
        VOLATILE.update(k for k, v in dump(root).items() if baseline.get(k) != v)

        copy_tree(main_tree, root)
        d = diff(baseline, dump(root))
        if d:
            fail("installing robot-credmon alone changed the HTCondor configuration:\n  " + "\n  ".join(d))
        print("check-condor-config: robot-credmon alone: HTCondor configuration unchanged")

        copy_tree(condor_tree, root)
        enabled = dump(root)
        want = {
            "CREDMON_OAUTH": "/usr/bin/robot-credmon",
            "SEC_CREDENTIAL_STORER": "/usr/bin/robot-credmon-storer",
        }
        for k, v in want.items():
            if enabled.get(k) != v:
                fail(f"with robot-credmon-condor, {k} = {enabled.get(k)!r}, want {v!r}")
        if "CREDMON_OAUTH" not in (enabled.get("DAEMON_LIST") or "").split():
            fail(f"with robot-credmon-condor, DAEMON_LIST = {enabled.get('DAEMON_LIST')!r} lacks CREDMON_OAUTH")
        for k, v in enabled.items():
            if isinstance(v, str) and v.startswith("/") and not v.startswith(root) and "robot-credmon" in v and " " not in v:
                if not os.path.lexists(os.path.join(root, v.lstrip("/"))):
                    fail(f"with robot-credmon-condor, {k} = {v} names a file the packages do not install")
        print("check-condor-config: robot-credmon-condor: " + "; ".join(diff(baseline, enabled)))

        remove_package(condor_tree, root, keep_condor)
        d = diff(baseline, dump(root))
        if d:
            fail("after removing robot-credmon-condor (conffiles kept) knobs remain:\n  " + "\n  ".join(d))
        remove_package(main_tree, root, keep_main)
        d = diff(baseline, dump(root))
        if d:
            fail("after removing both packages (conffiles kept) knobs remain:\n  " + "\n  ".join(d))
        print("check-condor-config: removal (conffiles kept): the site configuration is back, no knob names a missing file")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
