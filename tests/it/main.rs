#[path = "../support/mod.rs"]
mod support;

mod cmd;
mod credmon;
mod get;
mod harness;
mod openbao;
mod ops;
