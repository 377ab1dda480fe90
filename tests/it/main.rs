//! Integration tests: one binary, one module per role, the harness in `tests/support/`.

#![allow(clippy::unwrap_used, clippy::expect_used)]
// The tests drive real programs and servers in real time; sleeps are
// counted instead (`cli::sleeps_are_few_and_explained`).
#![allow(clippy::disallowed_methods)]

#[path = "../support/mod.rs"]
mod support;

#[path = "../sim/mod.rs"]
mod sim;

mod alerts;
mod cli;
mod cmd;
mod completions;
mod confine;
mod credmon;
mod fault;
mod get;
mod ha;
mod harness;
mod journal;
mod oidc;
mod openbao;
mod ops;
mod packaging;
mod plugin_output;
mod pool;
mod props;
mod sim_invariants;
mod store;
mod vault_client;
