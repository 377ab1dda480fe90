#![allow(clippy::unwrap_used)]
use super::*;

#[test]
fn names() {
    for (n, ok) in [
        ("alice", true),
        ("igwn_robot", true),
        ("a-b+c=d.e_f", true),
        (".hidden", false),
        ("", false),
        ("a b", false),
        ("a/b", false),
        ("ünï", false),
        ("a\nb", false),
    ] {
        assert_eq!(valid_cred_name(n), ok, "{n:?}");
    }
}

fn filter(vault: &[&str], special: bool) -> ProviderFilter {
    ProviderFilter {
        vault: vault.iter().map(|s| s.to_string()).collect(),
        others: HashSet::from(["mylocal".to_string()]),
        client_ids: HashSet::from(["BOX".to_string()]),
        special_chars: special,
    }
}

#[test]
fn provider_filter() {
    let star = filter(&["*"], false);
    let listed = filter(&["igwn", "dune"], false);
    let special = filter(&["igwn_robot"], true);
    for (stem, f, want) in [
        ("igwn", &star, Ok(())),
        ("igwn_robot", &star, Ok(())),
        ("igwn_robot_handle", &star, Ok(())),
        ("scitokens", &star, Err(NotOurs::OtherCredmon)),
        ("mylocal_x", &star, Err(NotOurs::OtherCredmon)),
        ("box", &star, Err(NotOurs::OtherCredmon)),
        ("igwn_", &star, Err(NotOurs::TrailingUnderscore)),
        ("dune_ro", &listed, Ok(())),
        ("other", &listed, Err(NotOurs::NotListed)),
        ("igwn_robot", &special, Ok(())),
        ("igwn", &special, Err(NotOurs::NotListed)),
    ] {
        assert_eq!(ours(stem, f), want, "{stem}");
    }
}

#[test]
fn parents_and_roles() {
    assert_eq!(parent_stem("igwn_robot_ro"), Some("igwn_robot"));
    assert_eq!(parent_stem("igwn"), None);
}

#[test]
fn renew_rules() {
    // Seconds since the epoch; the decision is made at 10,000 s.
    let t = |s: u64| std::time::UNIX_EPOCH + std::time::Duration::from_secs(s);
    let now = t(10_000);
    let fresh = |ctime: u64, exp: Option<u64>| {
        Some(UseState {
            ctime: t(ctime),
            exp: exp.map(t),
        })
    };
    for (use_state, top, want) in [
        (None, 0, Some(Renew::Missing)),
        (fresh(9_990, Some(20_000)), 9_995, Some(Renew::TopNewer)),
        (fresh(10_000 - 1201, Some(20_000)), 0, Some(Renew::Age)),
        (fresh(10_000 - 1199, Some(20_000)), 0, None),
        (fresh(9_990, Some(10_000 + 2399)), 0, Some(Renew::Expiring)),
        (fresh(9_990, Some(10_000 + 2400)), 0, None),
        (fresh(9_990, Some(9_000)), 0, Some(Renew::Expiring)),
        (fresh(9_990, None), 0, Some(Renew::Expiring)),
        (fresh(10_000, Some(20_000)), 10_000, None),
    ] {
        assert_eq!(
            should_renew(use_state, t(top), now, 2400, 1200),
            want,
            "{use_state:?} top {top}"
        );
    }
}

#[test]
fn vault_urls() {
    let ports = [8200];
    let none: Vec<String> = vec![];
    let ok = check_vault_url(
        "https://Vault.Example.org:8200/v1/secret/oauth/creds/igwn/alice:robot",
        &ports,
        &none,
    )
    .unwrap();
    assert_eq!(ok.host, "vault.example.org");
    assert_eq!(ok.path, "secret/oauth/creds/igwn/alice:robot");
    for url in [
        "http://vault:8200/v1/secret/x",
        "https://vault/v1/secret/x",
        "https://vault:8201/v1/secret/x",
        "https://vault:8200/v2/secret/x",
        "https://vault:8200/v1/",
        "https://u:p@vault:8200/v1/secret/x",
        "https://vault:8200/v1/secret/x?a=b",
        "https://vault:8200/v1/../x",
        "not a url",
    ] {
        assert!(check_vault_url(url, &ports, &none).is_err(), "{url}");
    }
    assert!(check_vault_url("https://vault:8201/v1/s", &[8201], &none).is_ok());
    let trusted = vec!["vault".to_string()];
    assert!(check_vault_url("https://VAULT:8200/v1/s", &ports, &trusted).is_ok());
    assert!(check_vault_url("https://evil:8200/v1/s", &ports, &trusted).is_err());
    let e = check_vault_url("https://evil:8200/v1/s", &ports, &trusted).unwrap_err();
    assert!(e.contains("'evil:8200'"), "{e}");
}

/// TRUSTED_VAULT_HOSTS in each form a site may write, against the URLs
/// storers write: the credd's `host:port` form and the bare host both work.
/// (Long: one table of cases, one row per form and URL.)
#[test]
fn trusted_vault_hosts_in_both_forms() {
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    for (entries, url, host, want) in [
        // The credd's form: the URL's host:port, any case.
        (
            s(&["vault.example.org:8200"]),
            "https://vault.example.org:8200/v1/x",
            "vault.example.org",
            true,
        ),
        (
            s(&["VAULT.example.org:8200"]),
            "https://vault.EXAMPLE.org:8200/v1/x",
            "vault.example.org",
            true,
        ),
        (
            s(&["vault.example.org:8201"]),
            "https://vault.example.org:8200/v1/x",
            "vault.example.org",
            false,
        ),
        // A URL without a port: the credd compares the bare host.
        (
            s(&["vault.example.org:8200"]),
            "https://vault.example.org/v1/x",
            "vault.example.org",
            false,
        ),
        (
            s(&["vault.example.org"]),
            "https://vault.example.org/v1/x",
            "vault.example.org",
            true,
        ),
        // The bare host admits any (allowed) port.
        (
            s(&["vault.example.org"]),
            "https://vault.example.org:8200/v1/x",
            "vault.example.org",
            true,
        ),
        (
            s(&["other", "vault.example.org"]),
            "https://vault.example.org:8200/v1/x",
            "vault.example.org",
            true,
        ),
        (
            s(&["vault.example"]),
            "https://vault.example.org:8200/v1/x",
            "vault.example.org",
            false,
        ),
        (
            s(&["example.org:8200"]),
            "https://vault.example.org:8200/v1/x",
            "vault.example.org",
            false,
        ),
        // IP addresses, IPv6 in brackets as in URLs.
        (
            s(&["127.0.0.1:8200"]),
            "https://127.0.0.1:8200/v1/x",
            "127.0.0.1",
            true,
        ),
        (
            s(&["127.0.0.1"]),
            "https://127.0.0.1:8200/v1/x",
            "127.0.0.1",
            true,
        ),
        (s(&["[::1]:8200"]), "https://[::1]:8200/v1/x", "::1", true),
        (s(&["::1"]), "https://[::1]:8200/v1/x", "::1", true),
        (s(&["[::1]"]), "https://[::1]:8200/v1/x", "::1", true),
        (s(&["[::1]:8201"]), "https://[::1]:8200/v1/x", "::1", false),
    ] {
        assert_eq!(
            trusted_vault_host(url, host, &entries),
            want,
            "{entries:?} {url}"
        );
    }
    assert_eq!(url_authority("https://h:1/v1/x"), Some("h:1"));
    assert_eq!(url_authority("https://h"), Some("h"));
    assert_eq!(url_authority("https:///x"), None);
    assert_eq!(url_authority("nothing"), None);
}

#[test]
fn queries() {
    let q = bearer_query("secret/oauth/creds/igwn/a:r", 2400, None, None);
    assert_eq!(q, vec![("minimum_seconds", "2400".to_string())]);
    let q = bearer_query(
        "secret/oauth/sts/igwn/a:r",
        60,
        Some("read:/x"),
        Some("aud1"),
    );
    assert_eq!(
        q,
        vec![
            ("minimum_seconds", "60".to_string()),
            ("scopes", "read:/x".to_string()),
            ("audiences", "aud1".to_string())
        ]
    );
    let q = bearer_query("secret/oauth/creds/igwn/a:r", 60, None, Some("aud1"));
    assert_eq!(q[1], ("audience", "aud1".to_string()));
}
