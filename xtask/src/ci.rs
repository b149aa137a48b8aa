//! `cargo xtask ci`, `e2e` and `dist`.

use crate::run::{cargo, has_cargo_subcommand, root, step};

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

/// Release binaries and their SHA-256 sums in target/dist.
pub fn dist() -> anyhow::Result<()> {
    let mut build = cargo();
    build.args(["build", "--release", "--workspace", "--bins", "--exclude", "xtask"]);
    step(build)?;
    let dist = root().join("target/dist");
    std::fs::create_dir_all(&dist)?;
    let mut sums = std::process::Command::new("sha256sum");
    sums.current_dir(&dist);
    for tool in crate::bench::TOOLS {
        std::fs::copy(root().join("target/release").join(tool), dist.join(tool))?;
        sums.arg(tool);
    }
    let out = sums.output()?;
    std::fs::write(dist.join("SHA256SUMS"), out.stdout)?;
    eprintln!("xtask: binaries and SHA256SUMS in {}", dist.display());
    Ok(())
}
