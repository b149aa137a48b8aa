//! The `[downtime-monitor]` section: monitor-wide settings, `[[downtime-monitor.target]]`
//! entries and recurring `[[downtime-monitor.maintenance]]` windows.
//!
//! ```toml
//! [downtime-monitor]
//! vantage = "office"              # who is looking (several monitors can share a database)
//! retention = "30d"               # raw samples kept; older ones are rolled up per hour
//! decision = { do-nothing-above = 95.0, watch-above = 85.0, ups-above = 80.0 }
//! timezone = "Africa/Johannesburg"  # monthly rows start at local midnight [default: UTC]
//!
//! [[downtime-monitor.target]]
//! name = "vf-server"
//! kind = "https"                  # http | https | tcp | postgres | command | ups | heartbeat | dns
//! address = "https://vf.example.com/health"
//! interval = "60s"
//! failure-threshold = 3           # consecutive failures before DOWN
//! recovery-threshold = 2          # consecutive successes before RECOVERED
//! cert-valid-days = 14            # https: fail when the certificate expires within 14 days
//!
//! [[downtime-monitor.target]]
//! name = "nightly-backup"
//! kind = "heartbeat"              # pushed: `downtime-monitor ping nightly-backup` or POST /ping/NAME
//! period = "1d"                   # a ping is expected this often
//! grace = "1h"                    # and may be this late before the target is DOWN
//!
//! [[downtime-monitor.target]]
//! name = "app-dns"
//! kind = "dns"                    # ask `address` (a DNS server) for `query`
//! address = "127.0.0.1:53"
//! query = "app.example.com"
//! record-type = "A"               # A | AAAA | CNAME | TXT
//! expect = ["203.0.113.10"]       # the answer must be exactly these (any order)
//!
//! [[downtime-monitor.target]]
//! name = "mains"
//! kind = "ups"                    # a UPS through NUT's upsd: DOWN only if unreadable or LB/OFF
//! address = "127.0.0.1:3493"
//! ups = "apc"
//! low-runtime = "15m"             # battery-low also when runtime on battery falls under this
//!
//! [[downtime-monitor.maintenance]]
//! target = "vf-server"            # or "*"
//! days = ["sun"]
//! start = "02:00"                 # UTC unless utc-offset is given
//! utc-offset = "+02:00"
//! duration = "30m"
//! reason = "weekly updates"
//! ```

use std::net::IpAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use standby_common::duration::HumanDuration;
use standby_common::probe::StatusSet;
use toml::Spanned;

standby_common::section! {
    /// Settings of downtime-monitor.
    pub struct Config {
        /// Name of this monitor's point of view [default: the host name]
        #[arg(long)]
        pub vantage: Option<String>,
        /// SQLite database [default: <state dir>/monitor.db]
        #[arg(long, value_name = "PATH")]
        pub database: Option<PathBuf>,
        /// A shared PostgreSQL history instead of SQLite: postgres://user@host/db or
        /// "host=... dbname=..." (several monitors, quorum reports)
        #[arg(long, value_name = "URL")]
        pub store: Option<String>,
        /// The store's password from this env var [default: PGPASSWORD]
        #[arg(long, value_name = "VAR")]
        pub store_password_env: Option<String>,
        /// The store's password from this file (chmod 600)
        #[arg(long, value_name = "FILE")]
        pub store_password_file: Option<PathBuf>,
        /// A CA to trust for the store's TLS certificate (besides the system's)
        #[arg(long, value_name = "FILE")]
        pub store_cacert: Option<PathBuf>,
        /// How long raw samples are kept before hourly roll-up
        #[arg(long, value_name = "DUR", default_value = "30d")]
        pub retention: HumanDuration,
        /// Probes in flight at most
        #[arg(long, value_name = "N", default_value_t = 64)]
        pub concurrency: usize,
        /// Repeat the DOWN alert this often while a target stays down [default: never]
        #[arg(long, value_name = "DUR")]
        pub reminder: Option<HumanDuration>,
        /// Time zone of the report's calendar months (an IANA name such as
        /// Africa/Johannesburg, from the system's tzdata) [default: UTC]
        #[arg(long, value_name = "ZONE")]
        pub timezone: Option<String>,
        /// Uptime % thresholds behind the report's decision: do nothing above, watch above,
        /// consider a UPS above (else UPS and LTE backup); in the file an inline table
        #[arg(long, value_name = "NOTHING,WATCH,UPS", default_value = "95,85,80")]
        pub decision: DecisionThresholds,
        /// Targets to check: file only
        #[arg(skip)]
        #[serde(rename = "target")]
        pub targets: Vec<Spanned<TargetSpec>>,
        /// Weekly maintenance windows: file only
        #[arg(skip)]
        pub maintenance: Vec<Spanned<RecurringSpec>>,
    }
}

/// What kind of check a target is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    Http,
    Https,
    Tcp,
    Postgres,
    Command,
    Ups,
    /// Pushed: pings from `downtime-monitor ping` or `POST /ping/NAME` (see [`crate::heartbeat`]).
    Heartbeat,
    /// A DNS question to a given server (see [`crate::dns`]).
    Dns,
}

/// One `[[downtime-monitor.target]]` as written.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TargetSpec {
    pub name: String,
    pub kind: Kind,
    /// URL (http/https), host:port (tcp), conninfo (postgres).
    pub address: Option<String>,
    /// argv for `kind = "command"`: exit 0 = healthy.
    pub command: Option<Vec<String>>,
    pub interval: Option<HumanDuration>,
    pub timeout: Option<HumanDuration>,
    pub failure_threshold: Option<u32>,
    pub recovery_threshold: Option<u32>,
    pub expect_status: Option<StatusSet>,
    pub body_contains: Option<String>,
    pub body_regex: Option<String>,
    pub max_latency: Option<HumanDuration>,
    pub resolve: Option<IpAddr>,
    pub insecure: Option<bool>,
    pub cacert: Option<PathBuf>,
    pub follow_redirects: Option<bool>,
    /// PostgreSQL password (or upsd's, with `username`) from this env var or file.
    pub password_env: Option<String>,
    pub password_file: Option<PathBuf>,
    /// `kind = "ups"`: the UPS's name in upsd.
    pub ups: Option<String>,
    /// `kind = "ups"`: upsd's USERNAME, when upsd.users asks for one.
    pub username: Option<String>,
    /// `kind = "ups"`: on battery with less runtime than this is `battery-low` (as LB is).
    pub low_runtime: Option<HumanDuration>,
    /// `kind = "https"`: fail when the server's certificate expires within this many days.
    pub cert_valid_days: Option<u32>,
    /// `kind = "heartbeat"`: a ping is expected at least this often.
    pub period: Option<HumanDuration>,
    /// `kind = "heartbeat"`: how late a ping may be before the target fails [default: 1m].
    pub grace: Option<HumanDuration>,
    /// `kind = "dns"`: the name asked.
    pub query: Option<String>,
    /// `kind = "dns"`: A, AAAA, CNAME or TXT [default: A].
    pub record_type: Option<String>,
    /// `kind = "dns"`: the exact answer expected (any order) [default: any non-empty answer].
    pub expect: Option<Vec<String>>,
}

/// A weekly recurring maintenance window as written.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RecurringSpec {
    /// A target name, or "*" for all [default: "*"].
    pub target: Option<String>,
    /// Days of the week (mon..sun) [default: every day].
    pub days: Option<Vec<String>>,
    /// "HH:MM" local to `utc-offset`.
    pub start: String,
    pub duration: HumanDuration,
    /// "+02:00" [default: UTC].
    pub utc_offset: Option<String>,
    pub reason: Option<String>,
}

/// Uptime percentages that decide what to do (the seed plan: > 95 nothing, 85–95 watch,
/// 80–85 consider a UPS, < 80 UPS and LTE backup).
#[derive(Debug, Clone, Copy, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct DecisionThresholds {
    pub do_nothing_above: f64,
    pub watch_above: f64,
    pub ups_above: f64,
}

impl std::str::FromStr for DecisionThresholds {
    type Err = String;

    /// `95,85,80` (as a flag or env var), or the file's inline table form.
    fn from_str(s: &str) -> Result<Self, String> {
        if s.trim_start().starts_with('{') {
            #[derive(Deserialize)]
            struct Wrap {
                v: DecisionThresholds,
            }
            return toml::from_str::<Wrap>(&format!("v = {s}")).map(|w| w.v).map_err(|e| e.message().to_string());
        }
        let parts: Vec<f64> = s
            .split(',')
            .map(|p| p.trim().parse::<f64>())
            .collect::<Result<_, _>>()
            .map_err(|_| format!("expected three percentages like 95,85,80, got {s:?}"))?;
        let [do_nothing_above, watch_above, ups_above] = parts[..] else {
            return Err(format!("expected three percentages like 95,85,80, got {s:?}"));
        };
        let d = DecisionThresholds { do_nothing_above, watch_above, ups_above };
        d.check()?;
        Ok(d)
    }
}

impl DecisionThresholds {
    /// Percentages within 0–100, from do-nothing down to UPS.
    pub fn check(&self) -> Result<(), String> {
        let all = [self.do_nothing_above, self.watch_above, self.ups_above];
        if all.iter().any(|p| !(0.0..=100.0).contains(p)) {
            return Err(format!("decision thresholds must be percentages within 0-100, got {all:?}"));
        }
        if !(self.do_nothing_above >= self.watch_above && self.watch_above >= self.ups_above) {
            return Err(format!(
                "decision thresholds must go down: do-nothing-above >= watch-above >= ups-above, got {all:?}"
            ));
        }
        Ok(())
    }

    /// The decision for an uptime percentage.
    pub fn decide(&self, uptime_pct: f64) -> &'static str {
        if uptime_pct > self.do_nothing_above {
            "do nothing"
        } else if uptime_pct >= self.watch_above {
            "watch two more months"
        } else if uptime_pct >= self.ups_above {
            "consider a UPS"
        } else {
            "UPS and LTE backup"
        }
    }
}
