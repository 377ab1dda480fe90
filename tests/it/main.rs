//! Integration tests: one binary, one module per role, the harness in `tests/support/`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../support/mod.rs"]
mod support;

mod cmd;
mod credmon;
mod fault;
mod get;
mod harness;
mod oidc;
mod openbao;
mod ops;
mod props;
mod store;
mod vault_client;
