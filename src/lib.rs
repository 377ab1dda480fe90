//! robot-credmon keeps SciTokens (JWT bearer tokens) fresh for robot accounts.
//!
//! Data flow: a Kerberos keytab ([`kerberos`]) logs in to Vault ([`vault`]),
//! which hands out a Vault token and then bearer tokens ([`token`]); these are
//! written to files ([`files`]) by one of the roles:
//!
//! * [`get`]: the cron / standalone role (`robot-credmon get`, `igwn-robot-get`);
//! * [`store`]: HTCondor's `SEC_CREDENTIAL_STORER` (`robot-credmon store`,
//!   `robot-credmon-storer`), also behind `get --condor`;
//! * [`inspect`]: `robot-credmon token`, showing a token file;
//! * [`credmon`]: the HTCondor credential monitor (`CREDMON_OAUTH`);
//! * [`check`]: monitoring checks in Nagios plugin form;
//! * [`status`]: every credential the credmon keeps, one line each (`robot-credmon status`).
//!
//! [`cli`] holds the command-line definitions; `main.rs` only parses and dispatches.
//! [`duration`] parses range-checked durations, [`process`] runs other
//! programs, and [`env`] is the injected environment (variables, uid, clock).
//! [`confine`] reduces the credmon's privileges after start-up.

// No function over 60 lines outside the unit tests (issue 16; the
// threshold is in clippy.toml).
#![cfg_attr(not(test), deny(clippy::too_many_lines))]

pub mod backoff;
pub mod check;
pub mod cli;
pub mod condor;
pub mod confine;
pub mod credmon;
pub mod duration;
pub mod env;
pub mod files;
pub mod generate;
pub mod get;
pub mod inspect;
pub mod kerberos;
pub mod logging;
pub mod metrics;
pub mod notify;
pub mod process;
pub mod range;
pub mod status;
pub mod store;
pub mod token;
pub mod vault;
