//! Where token files live: WLCG bearer token discovery and htgettoken's
//! Vault token default. Pure functions of the environment and the uid.

use std::path::PathBuf;

/// The bearer token file: `$BEARER_TOKEN_FILE`, else `$XDG_RUNTIME_DIR/bt_u<uid>`,
/// else `/tmp/bt_u<uid>` (empty variables count as unset).
pub fn bearer_token_file(env: impl Fn(&str) -> Option<String>, uid: u32) -> PathBuf {
    let set = |k: &str| env(k).filter(|v| !v.is_empty());
    if let Some(f) = set("BEARER_TOKEN_FILE") {
        return PathBuf::from(f);
    }
    match set("XDG_RUNTIME_DIR") {
        Some(dir) => PathBuf::from(dir).join(format!("bt_u{uid}")),
        None => PathBuf::from(format!("/tmp/bt_u{uid}")),
    }
}

/// htgettoken's default Vault token file, `/tmp/vt_u<uid>`.
pub fn vault_token_file(uid: u32) -> PathBuf {
    PathBuf::from(format!("/tmp/vt_u{uid}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discovery_table() {
        let cases: [(&[(&str, &str)], &str); 6] = [
            (&[], "/tmp/bt_u1000"),
            (
                &[("XDG_RUNTIME_DIR", "/run/user/1000")],
                "/run/user/1000/bt_u1000",
            ),
            (&[("XDG_RUNTIME_DIR", "")], "/tmp/bt_u1000"),
            (
                &[
                    ("BEARER_TOKEN_FILE", "/x/tok"),
                    ("XDG_RUNTIME_DIR", "/run/user/1000"),
                ],
                "/x/tok",
            ),
            (
                &[("BEARER_TOKEN_FILE", ""), ("XDG_RUNTIME_DIR", "/r")],
                "/r/bt_u1000",
            ),
            (&[("BEARER_TOKEN_FILE", "rel/tok")], "rel/tok"),
        ];
        for (vars, want) in cases {
            let env = |k: &str| {
                vars.iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            };
            assert_eq!(
                bearer_token_file(env, 1000),
                PathBuf::from(want),
                "{vars:?}"
            );
        }
        assert_eq!(vault_token_file(7), PathBuf::from("/tmp/vt_u7"));
    }
}
