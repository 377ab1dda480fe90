#[path = "../support/mod.rs"]
mod support;

mod credmon;
mod harness;
mod ops;
