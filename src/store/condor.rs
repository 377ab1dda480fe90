//! Running HTCondor's `condor_store_cred` through [`crate::process`]
//! (bounded in time, stopped by pid when it hangs). The configuration comes
//! from the one reader, [`crate::condor::config`].

use crate::env::Env;
use crate::process::{Output, Tool};
use std::time::Duration;

/// How long an HTCondor tool may take.
const TOOL_TIMEOUT: Duration = Duration::from_secs(60);

/// A finished tool run.
#[derive(Debug)]
pub struct ToolRun {
    /// Exit code (-1 when killed).
    pub code: i32,
    /// Standard output (empty when passed through).
    pub stdout: String,
    /// Standard error (empty when passed through).
    pub stderr: String,
}

/// Runs `prog args` (found on `env`'s `$PATH`), feeding `input`; with
/// `pass_through` the output goes to our stdout.
pub fn run_tool(
    prog: &str,
    args: &[String],
    input: Option<&[u8]>,
    pass_through: bool,
    env: &Env,
) -> Result<ToolRun, String> {
    run_tool_with(prog, args, &[], input, pass_through, env)
}

/// [`run_tool`] with the variables `vars` set for the tool (for example
/// `_CONDOR_CREDD_HOST`, the HTCondor knob naming the credd to talk to).
pub fn run_tool_with(
    prog: &str,
    args: &[String],
    vars: &[(&str, &str)],
    input: Option<&[u8]>,
    pass_through: bool,
    env: &Env,
) -> Result<ToolRun, String> {
    let mut tool = Tool::new(prog, args, TOOL_TIMEOUT, env.path_var());
    tool.vars = vars.iter().map(|(k, v)| (k.into(), v.into())).collect();
    tool.input = input.map(<[u8]>::to_vec);
    if pass_through {
        tool.output = Output::Inherit;
    }
    let done = tool.run().map_err(|e| e.to_string())?;
    Ok(ToolRun {
        code: done.code.unwrap_or(-1),
        stdout: done.stdout,
        stderr: done.stderr,
    })
}
