//! smoke-test: declarative HTTP checks after a deploy, with reports for CI.
//!
//! A library first: [`Suite::load`] reads and validates a suite file, [`run`] (or
//! [`run_blocking`]) runs suites and returns a [`Report`]; blue-green-deploy calls these
//! in-process against the idle colour. The binary is a thin front ([`cli`]).

pub mod cli;
pub mod config;
pub mod cookie_test;
pub mod cookies;
pub mod decode;
pub mod exchange;
pub mod expect;
pub mod redact;
pub mod report;
pub mod runner;
pub mod suite;
pub mod template;

pub use report::Report;
pub use runner::{run, run_blocking, RunOptions};
pub use suite::Suite;

use standby_common::Code;

/// Report formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    Human,
    Json,
    Junit,
    Tap,
}

impl Format {
    /// Render a report in this format.
    pub fn render(self, report: &Report) -> String {
        match self {
            Format::Human => report.to_string(),
            Format::Json => serde_json::to_string_pretty(report).unwrap_or_default() + "\n",
            Format::Junit => report::junit::render(report),
            Format::Tap => report::tap::render(report),
        }
    }
}

/// The exit code of a report: 0 all passed, 4 nothing answered at all, 1 otherwise.
pub fn exit_code(report: &Report) -> Code {
    if report.ok {
        Code::Ok
    } else if report.unreachable {
        Code::Unavailable
    } else {
        Code::Failed
    }
}
