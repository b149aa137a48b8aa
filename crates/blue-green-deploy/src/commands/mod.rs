//! One module per command (`deploy`, `switch`, `rollback`, `status`), and [`Run`]: the steps
//! they share (guards, the switch, verifying through the proxy), each a row of the report and
//! a step in the state dir's record.

pub mod deploy;
pub mod rollback;
pub mod status;
pub mod switch;

use std::time::Instant;

use indicatif::ProgressBar;
use serde_json::json;
use standby_common::exit::Code;
use standby_common::notify::EventKind;

use crate::color::Color;
use crate::record::{self, Outcome, Record};
use crate::report::RunReport;
use crate::setup::Setup;

/// A deploy, switch or rollback in progress.
pub struct Run<'a> {
    pub setup: &'a Setup,
    pub report: RunReport,
    record: Record,
    bar: ProgressBar,
}

impl<'a> Run<'a> {
    /// Start a run: its record (marked running) is written before anything changes.
    pub fn begin(
        setup: &'a Setup,
        command: &str,
        from: Option<Color>,
        to: Color,
        version: Option<String>,
        steps: u64,
    ) -> anyhow::Result<Run<'a>> {
        let record = Record::new(command, from, to, version.clone());
        record::save(&setup.state, &record)?;
        let bar = setup.ctx.output.progress(steps, command);
        Ok(Run { setup, report: RunReport::new(command, from, to, version), record, bar })
    }

    /// Run one step: recorded in the state dir before it starts, a report row when done.
    pub fn step<T>(&mut self, name: &str, f: impl FnOnce(&Setup) -> Result<(T, String), String>) -> Result<T, String> {
        self.record.step = name.to_string();
        if let Err(e) = record::save(&self.setup.state, &self.record) {
            tracing::warn!("cannot record step {name}: {e:#}");
        }
        self.bar.set_message(format!("{} {name}", self.report.command));
        tracing::info!("step {name}");
        let started = Instant::now();
        let result = f(self.setup);
        let (value, row) = match result {
            Ok((v, detail)) => (Ok(v), Ok(detail)),
            Err(e) => (Err(e.clone()), Err(e)),
        };
        self.report.push(name, started, row);
        self.bar.inc(1);
        value
    }

    /// Health of `color` directly, waiting up to `health-timeout`.
    pub fn health(&mut self, color: Color) -> Result<(), String> {
        self.step("health", |s| {
            let url = s.health_url(color);
            match s.prober.wait_healthy(&url, None, s.config.health_timeout.get()) {
                Ok(p) => Ok(((), format!("{color} {url}: {p}"))),
                Err(p) => Err(format!("{color} {url} not healthy within {}: {p}", s.config.health_timeout)),
            }
        })
    }

    /// The smoke suite in-process against `color`'s address (skipped without a suite).
    pub fn smoke(&mut self, color: Color) -> Result<(), String> {
        let Some(suite) = self.setup.suite.clone() else {
            return Ok(());
        };
        let base = self.setup.backend(color).url("");
        let mut smoke = None;
        let result = self.step("smoke", |s| {
            let mut opts = s.smoke_options.clone();
            opts.base_url = Some(base.clone());
            let report = smoke_test::run_blocking(&[suite], &opts).map_err(|e| format!("{e:#}"))?;
            let summary = format!("{color} {base}: {}/{} checks passed", report.passed, report.total);
            let ok = report.ok;
            smoke = Some(report);
            if ok {
                Ok(((), summary))
            } else {
                Err(summary)
            }
        });
        self.report.smoke = smoke;
        result
    }

    /// Point the proxy at `color` (validated first; restored when rejected).
    pub fn switch(&mut self, name: &str, color: Color) -> Result<(), String> {
        let note = format!(
            "live {color}{} since {}",
            self.report.version.as_deref().map(|v| format!(" (version {v})")).unwrap_or_default(),
            record::now()
        );
        let result = self.step(name, |s| {
            s.proxy.switch(s.backend(color), &note).map_err(|e| format!("{e:#}"))?;
            Ok(((), format!("{} -> {color} ({})", s.proxy.describe(), s.backend(color).address)))
        });
        if result.is_ok() {
            self.report.changed = true;
            self.report.live = Some(color);
        }
        result
    }

    /// Through the proxy (public-url), `color` answers its health check (and names itself
    /// when a colour header is configured); then the smoke suite through the proxy.
    pub fn verify(&mut self, color: Color) -> Result<(), String> {
        self.step("verify", |s| {
            let (url, via) = match s.public_health_url() {
                Some(url) => (url, "through the proxy"),
                None => (s.health_url(color), "directly (no public-url)"),
            };
            let probe = s
                .prober
                .wait_settled(&url, Some(color.as_str()), s.config.health_timeout.get(), 5)
                .map_err(|p| format!("{url} {via}: {p}"))?;
            let mut detail = format!("{url} {via}: {probe}");
            if let (Some(suite), Some(public)) = (&s.suite, &s.config.public_url) {
                let mut opts = s.smoke_options.clone();
                opts.base_url = Some(public.clone());
                let report =
                    smoke_test::run_blocking(std::slice::from_ref(suite), &opts).map_err(|e| format!("{e:#}"))?;
                if !report.ok {
                    return Err(format!("smoke suite through {public}: {}/{} passed", report.passed, report.total));
                }
                detail.push_str(&format!("; smoke through the proxy {}/{} passed", report.passed, report.total));
            }
            Ok(((), detail))
        })
    }

    /// Stop `color` with the stop template.
    pub fn stop(&mut self, name: &str, color: Color) -> Result<(), String> {
        let version = self.report.version.clone();
        self.step(name, |s| {
            let line = s.run_template("stop", color, version.as_deref()).map_err(|e| format!("{e:#}"))?;
            Ok(((), format!("{color}: {line}")))
        })
    }

    /// End the run: the record, the report, a notification; the exit code.
    pub fn finish(mut self, outcome: Outcome, message: String) -> anyhow::Result<Code> {
        let ok = matches!(outcome, Outcome::Deployed | Outcome::Switched);
        self.report.ok = ok;
        self.report.outcome = outcome;
        self.report.message = message.clone();
        self.record.outcome = outcome;
        self.record.message = Some(message.clone());
        self.record.finished_at = Some(record::now());
        record::save(&self.setup.state, &self.record)?;
        self.bar.finish_and_clear();
        let code = if ok { Code::Ok } else { Code::Failed };
        let kind = match outcome {
            Outcome::Deployed | Outcome::Switched => EventKind::Changed,
            _ => EventKind::Failure,
        };
        let details = json!({
            "command": self.report.command, "outcome": outcome.as_str(), "from": self.report.from,
            "to": self.report.to, "live": self.report.live, "version": self.report.version,
        });
        self.setup.notify(kind, &message, details);
        self.setup.ctx.output.report(&self.report, code)?;
        Ok(code)
    }
}
