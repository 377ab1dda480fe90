//! The Vault client library against the test Vault: address failover and
//! the retry budget, which the command-line tests cannot steer.

use crate::support::{Fault, TestEnv};
use robot_credmon::backoff::Backoff;
use robot_credmon::vault::{
    Api, ClientConfig, Limits, ServerAddress, VaultClient, VaultToken, tls,
};
use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

fn client(e: &TestEnv, limits: Limits) -> VaultClient {
    let trust = tls::TrustSources {
        cafile: Some(e.vault.ca_file().to_owned()),
        capath: None,
    };
    VaultClient::new(ClientConfig {
        server: ServerAddress::parse(&e.vault.url()).unwrap(),
        certname: None,
        tls: tls::client_config(&trust).unwrap(),
        limits,
        clock: robot_credmon::env::Clock::system(),
    })
}

/// Another loopback address on the Vault's port: the Vault listens on
/// 127.0.0.1 only, so connections there are refused. (The client keeps the
/// URL's port, as every node of a cluster serves the same one.)
fn refusing(port: u16) -> SocketAddr {
    let probe = TcpListener::bind(("127.0.0.2", 0));
    assert!(probe.is_ok(), "127.0.0.2 must be usable on loopback");
    SocketAddr::from(([127, 0, 0, 2], port))
}

#[test]
fn a_refusing_address_fails_over_to_the_next_and_stays_there() {
    let e = TestEnv::start().unwrap();
    let good: SocketAddr = format!("127.0.0.1:{}", e.vault.port()).parse().unwrap();
    let c = client(&e, Limits::default()).with_addresses(vec![refusing(e.vault.port()), good]);
    let token = VaultToken::new(&e.provision_token(3600)).unwrap();
    let ttl = c.lookup_self_ttl(&token).unwrap();
    assert!(ttl > 3500);
    // Pinned: the next request goes straight to the working address.
    c.lookup_self_ttl(&token).unwrap();
    assert_eq!(
        c.request_count(),
        3,
        "one refused attempt, then two requests"
    );
    assert_eq!(e.vault.count("GET", "/v1/auth/token/lookup-self"), 2);
}

#[test]
fn retries_stop_within_the_budget() {
    let e = TestEnv::start().unwrap();
    e.vault.inject(Fault::sealed().permanent());
    let limits = Limits {
        retry_budget: Duration::from_millis(900),
        backoff: Backoff {
            base: Duration::from_millis(100),
            cap: Duration::from_millis(400),
        },
        ..Limits::default()
    };
    let c = client(&e, limits);
    let token = VaultToken::new(&e.provision_token(3600)).unwrap();
    let start = Instant::now();
    let err = c.lookup_self_ttl(&token).unwrap_err();
    let took = start.elapsed();
    assert!(err.is_transient(), "{err}");
    assert!(err.to_string().contains("Vault is sealed"), "{err}");
    assert!(took < Duration::from_millis(1500), "{took:?}");
    let attempts = e.vault.count("GET", "/v1/auth/token/lookup-self");
    assert!((3..=8).contains(&attempts), "{attempts} attempts");
}

#[test]
fn permanent_errors_are_not_retried() {
    let e = TestEnv::start().unwrap();
    let c = client(&e, Limits::default());
    let bogus = VaultToken::new("s.notavalidtoken0000000000").unwrap();
    let err = c.lookup_self_ttl(&bogus).unwrap_err();
    assert!(err.is_permission_denied(), "{err}");
    assert_eq!(c.request_count(), 1);
}
