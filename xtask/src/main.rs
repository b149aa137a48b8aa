//! Project automation, in Rust rather than shell: `cargo xtask <command>`.
//!
//! - `ci`    — what CI runs: fmt check, clippy -D warnings, every test against real servers
//! - `e2e`   — only the end-to-end tests (the real-server harness and cross-tool scenarios)
//! - `bench` — benchmarks side by side with the tools users would pick instead
//! - `demo`  — a disaster-recovery drill on this machine against local servers
//! - `dist`  — release binaries, man pages and completions: a tarball and a .deb in target/dist
//! - `render` — the monitor's report and status page as headless Chromium shows them (PNGs)

mod bench;
mod ci;
mod demo;
mod dist;
mod render;
mod run;

use std::process::ExitCode;

const USAGE: &str = "usage: cargo xtask <ci|e2e|bench [NAME...]|demo [--json]|dist [--debug]|render>

  ci     fmt check, clippy -D warnings, all tests (real servers; run scripts/install-deps.sh first)
  e2e    end-to-end tests only
  bench  benchmarks, side by side with the alternative; writes target/bench/report.json
  demo   try it: a disaster-recovery drill on loopback (--json: the summary as JSON)
  dist   release binaries, man pages, completions: a tarball and a .deb in target/dist
  render downtime-monitor's HTML report and status page as PNGs, through headless Chromium";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci::ci(),
        Some("e2e") => ci::e2e(),
        Some("bench") => bench::bench(&args[1..]),
        Some("demo") => demo::demo(&args[1..]),
        Some("dist") => dist::dist(&args[1..]),
        Some("render") => render::render(&args[1..]),
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            ExitCode::FAILURE
        }
    }
}
