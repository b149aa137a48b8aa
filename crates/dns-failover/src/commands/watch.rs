//! `watch`: the daemon. A round every `interval` (as `check` does), until SIGTERM/SIGINT.
//! The provider is read at start, then at most once a minute per record and before every
//! switch, so a 1 s interval stays far inside Cloudflare's 1,200 requests per 5 minutes.
//! `--metrics-listen` serves Prometheus metrics.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use standby_common::daemon;
use standby_common::duration::HumanDuration;
use standby_common::exit::Code;

use crate::record::Side;
use crate::report::RoundReport;
use crate::round::{self, RoundOptions, World};
use crate::setup::{keep, Session, Setup};
use crate::vantage::SharedViews;

/// How long values read from the provider are trusted between switches.
pub const REREAD_EVERY: Duration = Duration::from_secs(60);

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Serve Prometheus metrics on this address (GET /metrics)
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,
    /// Decide and print, but write nothing to the DNS provider
    #[arg(long)]
    pub dry_run: bool,
    /// Stop after this long (tests, benchmarks)
    #[arg(long, value_name = "DUR", hide = true)]
    pub stop_after: Option<HumanDuration>,
}

pub fn run(setup: &Setup, args: &Args) -> anyhow::Result<Code> {
    let mut session = setup.session(&[], true)?;
    let interval = setup.config.interval.get().max(Duration::from_millis(100));
    let opts = RoundOptions {
        // A check never outlasts the round it belongs to by much.
        timeout: setup.config.timeout.get().min(interval.max(Duration::from_millis(500))),
        dry_run: args.dry_run,
        force: false,
        reread_after: REREAD_EVERY,
    };
    standby_common::runtime()?.block_on(async {
        let metrics = Arc::new(Mutex::new(String::new()));
        if let Some(addr) = args.metrics_listen {
            let listener = daemon::bind_metrics(addr).await?;
            let metrics = metrics.clone();
            let render = move || metrics.lock().map(|m| m.clone()).unwrap_or_default();
            tokio::spawn(daemon::serve_metrics(listener, Arc::new(render)));
        }
        let views = SharedViews::connect(&setup.config).await?;
        let Session { records, state, providers, memory, .. } = &mut session;
        let world = World {
            control: &setup.control,
            providers: &*providers,
            notifiers: &setup.ctx.notifiers,
            views: views.as_ref(),
        };
        let stop = daemon::shutdown(args.stop_after.map(HumanDuration::get));
        tokio::pin!(stop);
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut calls_noted = 0;
        loop {
            tokio::select! {
                _ = &mut stop => break,
                _ = tick.tick() => {}
            }
            let outcomes = round::run(records, &world, memory, opts).await;
            if let Err(e) = keep(state, memory, providers, &mut calls_noted) {
                tracing::error!("{e:#}");
            }
            let report = RoundReport::new(outcomes, providers.calls());
            if let Ok(mut m) = metrics.lock() {
                *m = render_metrics(&report);
            }
            if setup.ctx.output.json {
                let _ = setup.ctx.output.line(&report);
            } else if report.changed || !report.ok {
                let _ = setup.ctx.output.line(&report.to_string().trim_end());
            }
        }
        tracing::info!("stopped");
        Ok(Code::Ok)
    })
}

fn render_metrics(report: &RoundReport) -> String {
    let mut out = String::new();
    type Gauge = (&'static str, &'static str, fn(&round::Outcome) -> bool);
    let gauges: [Gauge; 2] = [
        ("on_backup", "1 while the record points at the backup", |r| r.side == Side::Backup),
        ("primary_up", "1 while the primary's last check passed", |r| r.health.primary.ok),
    ];
    for (name, help, value) in gauges {
        let _ = writeln!(out, "# HELP standby_dns_failover_{name} {help}");
        let _ = writeln!(out, "# TYPE standby_dns_failover_{name} gauge");
        for r in &report.records {
            let v = u8::from(value(r));
            let _ = writeln!(out, "standby_dns_failover_{name}{{record=\"{}\",type=\"{}\"}} {v}", r.record, r.rtype);
        }
    }
    let _ = writeln!(out, "# HELP standby_dns_failover_api_calls_total API requests sent since start");
    let _ = writeln!(out, "# TYPE standby_dns_failover_api_calls_total counter");
    let _ = writeln!(out, "standby_dns_failover_api_calls_total {}", report.api_calls);
    out
}
