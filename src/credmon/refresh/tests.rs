#![allow(clippy::unwrap_used)]
use super::*;

#[test]
fn top_parsing() {
    let t = parse_top(br#"{"vault_token":"hvs.x","vault_url":"https://v:8200/v1/a","scopes":"a,b","audience":["x","y"],"other":1}"#).unwrap();
    assert_eq!(t.vault_token.unwrap().expose(), "hvs.x");
    assert_eq!(t.scopes.as_deref(), Some("a,b"));
    assert_eq!(t.audience.as_deref(), Some("x,y"));
    assert!(t.json.contains_key("other"));
    assert!(
        parse_top(br#"{"vault_url":"https://v:8200/v1/a"}"#)
            .unwrap()
            .vault_token
            .is_none()
    );
    for bad in [
        &b"[]"[..],
        b"{}",
        b"not json",
        br#"{"vault_url":"u","vault_token":""}"#,
    ] {
        assert!(parse_top(bad).is_err());
    }
}
