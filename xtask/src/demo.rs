//! `cargo xtask demo`: try standby on this machine. Starts an app behind a private nginx on
//! loopback, runs smoke-test against it (healthy, then with the app's health check failing),
//! and checks the example config with every tool. Nothing outside loopback is touched.

use std::process::Command;

use anyhow::Context;
use standby_e2e::{AppBackend, Nginx, NginxOptions};

use crate::run::{cargo, root, step};

const SUITE: &str = r#"[[check]]
name = "health through nginx"
path = "/app/health"
expect = { status = 200, body-contains = "ok", max-latency = "1s" }

[[check]]
name = "app answers JSON"
path = "/app/json"
expect = { json = [{ pointer = "/status", equals = "ok" }] }
capture = { app = { json = "/name" } }

[[check]]
name = "home page names the live colour"
path = "/app/"
expect = { body-contains = "hello from {{app}}" }
"#;

pub fn demo() -> anyhow::Result<()> {
    let mut build = cargo();
    build.args(["build", "--workspace", "--bins", "--exclude", "xtask"]);
    step(build)?;
    let bin = |tool: &str| root().join("target/debug").join(tool);

    let app = AppBackend::start("blue").context("starting the demo app")?;
    let nginx = Nginx::start(NginxOptions { upstream: Some(app.port), ..Default::default() })
        .context("starting nginx (run scripts/install-deps.sh first)")?;
    let dir = root().join("target/demo");
    std::fs::create_dir_all(&dir)?;
    let suite = dir.join("smoke.toml");
    std::fs::write(&suite, SUITE)?;
    println!("\n== an app ('blue') behind nginx at {}; suite: {}", nginx.url("/app/"), suite.display());

    let smoke = |label: &str| -> anyhow::Result<()> {
        println!("\n== {label}\n$ smoke-test {} --base-url {}", suite.display(), nginx.url(""));
        let status = Command::new(bin("smoke-test")).arg(&suite).args(["--base-url", &nginx.url("")]).status()?;
        println!("(exit code {})", status.code().unwrap_or(-1));
        Ok(())
    };
    smoke("the app is healthy")?;
    app.set_healthy(false);
    smoke("the app's health check now fails: exit 1 with what was expected and what came back")?;

    let example = root().join("examples/standby.toml");
    println!("\n== every tool checks examples/standby.toml");
    for tool in crate::bench::TOOLS {
        let mut check = Command::new(bin(tool));
        check.arg("--check-config").arg("-q").arg("--config").arg(&example);
        step(check)?;
    }
    println!("\nTry next: {} --help", bin("smoke-test").display());
    Ok(())
}
