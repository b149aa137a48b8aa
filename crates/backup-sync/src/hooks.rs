//! User hooks (`run-before`, `run-after`, `run-failed`, `run-finally`): shell lines run in
//! order through `standby_common::exec`; the first failing line stops its list.

use std::time::Duration;

use standby_common::exec::Cmd;

/// How long one hook line may take.
pub const HOOK_TIMEOUT: Duration = Duration::from_secs(3600);

/// Run the lines in order; the error names the failing line.
pub fn run(which: &str, lines: &[String]) -> anyhow::Result<usize> {
    for line in lines {
        Cmd::shell(line).timeout(HOOK_TIMEOUT).run_ok().map_err(|e| anyhow::anyhow!("{which} hook `{line}`: {e:#}"))?;
    }
    Ok(lines.len())
}
