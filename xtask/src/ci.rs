//! `cargo xtask ci`, `e2e` and `dist`.

use crate::run::{cargo, has_cargo_subcommand, step};

/// fmt check, clippy with warnings as errors, then every test. The test runner's summary is
/// the last thing printed.
pub fn ci() -> anyhow::Result<()> {
    let mut fmt = cargo();
    fmt.args(["fmt", "--all", "--", "--check"]);
    step(fmt)?;
    let mut clippy = cargo();
    clippy.args(["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"]);
    step(clippy)?;
    test(&["--workspace"])
}

/// Only the end-to-end package.
pub fn e2e() -> anyhow::Result<()> {
    test(&["--package", "standby-e2e"])
}

/// Doc tests, then every test with nextest (one process per test, so a test's servers die
/// with it) or cargo test where nextest is not installed.
fn test(scope: &[&str]) -> anyhow::Result<()> {
    let mut doc = cargo();
    doc.args(["test", "--doc", "--quiet"]).args(scope);
    step(doc)?;
    let mut run = cargo();
    if has_cargo_subcommand("nextest") {
        run.args(["nextest", "run", "--no-fail-fast"]).args(scope);
    } else {
        run.args(["test", "--no-fail-fast"]).args(scope);
    }
    step(run)
}
