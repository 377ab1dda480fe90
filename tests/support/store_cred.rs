//! Stand-ins for HTCondor's `condor_store_cred` and `condor_config_val`: small
//! shell scripts in a temp dir that the tests put first in `PATH`.
//!
//! * `condor_store_cred add-oauth -s NAME [-S scopes] [-A aud] -i -` writes
//!   `<creds>/NAME.top` as the credd does: the input unchanged without `-S`/`-A`,
//!   otherwise the JSON with `"scopes"`/`"audience"` added.
//! * `query-oauth -s NAME [-S][-A]`: exit 1 when there is no `.top`, 2 when the
//!   stored scopes/audience differ (absent == ""), else 0.
//! * Every call is appended to `calls` (one line of arguments), and every
//!   `condor_config_val` call to `config-calls`.
//! * With `_CONDOR_CREDD_HOST=C` (a credd by name) the credentials are those
//!   of credd C (`creds/@C/`), the call line ends in ` @C`, and a file
//!   `fail-add@C` makes adding fail at that credd only.
//! * `condor_config_val KNOB` prints `$_CONDOR_KNOB`, else the last `KNOB = value`
//!   of `$HOME/.condor/user_config`, else fails like the real one; `-dump`
//!   prints the `KNOB = value` lines of both (the environment's last).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

const STORE_CRED: &str = r#"#!/bin/sh
here=$(dirname "$0")
echo "$*${_CONDOR_CREDD_HOST:+ @$_CONDOR_CREDD_HOST}" >> "$here/calls"
creds="$here/creds"
if [ -n "$_CONDOR_CREDD_HOST" ]; then creds="$here/creds/@$_CONDOR_CREDD_HOST"; mkdir -p "$creds"; fi
op=$1; shift
name=; scopes=; aud=; input=
while [ $# -gt 0 ]; do
  case "$1" in
    -s) name=$2; shift 2;;
    -S) scopes=$2; shift 2;;
    -A) aud=$2; shift 2;;
    -u) shift 2;;
    -i) input=$2; shift 2;;
    *) shift;;
  esac
done
top="$creds/$name.top"
field() { sed -n "s/.*\"$1\": *\"\([^\"]*\)\".*/\1/p" "$top" | head -n 1; }
case "$op" in
  add-oauth)
    [ -n "$name" ] && [ "$input" = "-" ] || { echo "usage" >&2; exit 1; }
    [ -f "$here/fail-add" ] && { echo "STORE_CRED_FAILED: simulated" >&2; exit 1; }
    [ -f "$here/fail-add@$_CONDOR_CREDD_HOST" ] && { echo "Operation failed. Make sure your ALLOW_WRITE setting includes this host." >&2; exit 1; }
    body=$(cat)
    if [ -n "$scopes$aud" ]; then
      body="${body%\}*}"
      body=$(printf '%s' "$body" | sed -e '$s/[[:space:]]*$//')
      [ -n "$scopes" ] && body="$body,
  \"scopes\": \"$scopes\""
      [ -n "$aud" ] && body="$body,
  \"audience\": \"$aud\""
      body="$body
}"
    fi
    printf '%s\n' "$body" > "$top.tmp" && mv "$top.tmp" "$top"
    echo "Operation succeeded."
    exit 0;;
  query-oauth)
    [ -f "$top" ] || { echo "Credential not found" ; exit 1; }
    if [ "$(field scopes)" != "$scopes" ] || [ "$(field audience)" != "$aud" ]; then
      echo "Credential mismatch"; exit 2
    fi
    echo "Stored"; exit 0;;
  delete-oauth) rm -f "$top"; exit 0;;
esac
exit 1
"#;

const CONFIG_VAL: &str = r#"#!/bin/sh
echo "$*" >> "$(dirname "$0")/config-calls"
knob=$1
f="$HOME/.condor/user_config"
if [ "$knob" = "-dump" ]; then
  echo '# Configuration from machine: stand-in'
  [ -f "$f" ] && grep -E '^[[:space:]]*[A-Za-z_][A-Za-z0-9_.]*[[:space:]]*=' "$f"
  env | sed -n 's/^_CONDOR_\([^=]*\)=\(.*\)$/\1 = \2/p'
  exit 0
fi
v=$(printenv "_CONDOR_$knob") && { printf '%s\n' "$v"; exit 0; }
if [ -f "$f" ]; then
  line=$(grep -E "^[[:space:]]*$knob[[:space:]]*=" "$f" | tail -n 1)
  if [ -n "$line" ]; then printf '%s\n' "${line#*=}" | sed 's/^[[:space:]]*//'; exit 0; fi
fi
echo "Not defined: $knob" >&2
exit 1
"#;

/// The installed stand-ins.
pub struct StoreCred {
    /// Directory holding the scripts (put it first in `PATH`).
    pub bin: PathBuf,
}

impl StoreCred {
    /// Writes the scripts into `<dir>/condor-bin`.
    pub fn install(dir: &Path) -> StoreCred {
        let bin = dir.join("condor-bin");
        std::fs::create_dir_all(bin.join("creds")).unwrap();
        for (name, text) in [
            ("condor_store_cred", STORE_CRED),
            ("condor_config_val", CONFIG_VAL),
        ] {
            let p = bin.join(name);
            std::fs::write(&p, text).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        StoreCred { bin }
    }

    /// `PATH` with the stand-ins first.
    pub fn path_env(&self) -> String {
        format!(
            "{}:{}",
            self.bin.display(),
            std::env::var("PATH").unwrap_or_default()
        )
    }

    /// The recorded calls, one per line.
    pub fn calls(&self) -> Vec<String> {
        std::fs::read_to_string(self.bin.join("calls"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// The `condor_config_val` calls, one per line (its arguments).
    pub fn config_calls(&self) -> Vec<String> {
        std::fs::read_to_string(self.bin.join("config-calls"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Calls with this operation (`add-oauth`, `query-oauth`).
    pub fn count(&self, op: &str) -> usize {
        self.calls().iter().filter(|c| c.starts_with(op)).count()
    }

    /// The `.top` the "credd" holds for `name`, parsed.
    pub fn top(&self, name: &str) -> Option<serde_json::Value> {
        let text =
            std::fs::read_to_string(self.bin.join("creds").join(format!("{name}.top"))).ok()?;
        Some(serde_json::from_str(&text).unwrap_or_else(|e| panic!("bad .top {text:?}: {e}")))
    }

    /// The `.top` credd `credd` (by name) holds for `name`, parsed.
    pub fn top_at(&self, credd: &str, name: &str) -> Option<serde_json::Value> {
        let p = self
            .bin
            .join("creds")
            .join(format!("@{credd}"))
            .join(format!("{name}.top"));
        let text = std::fs::read_to_string(p).ok()?;
        Some(serde_json::from_str(&text).unwrap_or_else(|e| panic!("bad .top {text:?}: {e}")))
    }

    /// The raw `.top` text.
    pub fn top_text(&self, name: &str) -> Option<String> {
        std::fs::read_to_string(self.bin.join("creds").join(format!("{name}.top"))).ok()
    }

    /// Writes a `.top` as if stored earlier (e.g. with other scopes).
    pub fn put_top(&self, name: &str, json: &serde_json::Value) {
        std::fs::write(
            self.bin.join("creds").join(format!("{name}.top")),
            json.to_string(),
        )
        .unwrap();
    }
}
