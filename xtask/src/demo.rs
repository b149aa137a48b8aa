//! `cargo xtask demo`: try standby on this machine.

use crate::run::{cargo, step};

pub fn demo() -> anyhow::Result<()> {
    let mut build = cargo();
    build.args(["build", "--workspace", "--bins", "--exclude", "xtask"]);
    step(build)?;
    let example = crate::run::root().join("examples/standby.toml");
    for tool in crate::bench::TOOLS {
        let bin = crate::run::root().join("target/debug").join(tool);
        let mut check = std::process::Command::new(bin);
        check.arg("--check-config").arg("--config").arg(&example);
        step(check)?;
    }
    Ok(())
}
