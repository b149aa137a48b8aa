//! Targets, validated from the config, and probing one: every outcome, including a refused
//! connection, a timeout or garbage, is a [`Sample`], never an error.

use std::collections::BTreeSet;
use std::time::Duration;

use regex::Regex;
use standby_common::config::ConfigFile;
use standby_common::exec::Cmd;
use standby_common::probe::http::{ClientOptions, HttpCheck, Request, TlsOptions};
use standby_common::probe::lean::LeanClient;
use standby_common::probe::{self, ProbeResult, StatusSet};
use standby_common::secret::{self, Secret};

use crate::config::{Config, Kind, TargetSpec};

/// How to probe a target.
#[derive(Debug, Clone)]
pub enum How {
    Http(Box<HttpCheck>),
    Tcp(String),
    Postgres {
        conninfo: String,
        password: Option<Secret>,
        ca_file: Option<std::path::PathBuf>,
    },
    Command(Vec<String>),
    Ups(Box<UpsCheck>),
    /// An https check that also fails when the certificate expires within this many days.
    HttpCert(Box<HttpCheck>, u32),
    /// Pushed pings, judged when the round is recorded (the probe only makes a placeholder).
    Heartbeat(crate::heartbeat::HeartbeatCheck),
    Dns(Box<crate::dns::DnsCheck>),
}

/// A UPS read through NUT's upsd.
#[derive(Debug, Clone)]
pub struct UpsCheck {
    pub address: String,
    pub ups: String,
    pub auth: Option<standby_common::nut::Auth>,
    /// On battery with less runtime than this counts as battery-low.
    pub low_runtime: Option<Duration>,
}

/// A validated target.
#[derive(Debug, Clone)]
pub struct Target {
    pub name: String,
    pub kind: Kind,
    pub how: How,
    pub interval: Duration,
    pub timeout: Duration,
    pub failure_threshold: u32,
    pub recovery_threshold: u32,
}

/// One probe's outcome.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Sample {
    pub target: String,
    /// Unix ms when the probe started.
    pub at: i64,
    pub ok: bool,
    pub latency_ms: f64,
    pub error: Option<String>,
    pub interval_ms: i64,
    /// `kind = "ups"`: what the UPS reported (None when it could not be read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub power: Option<standby_common::nut::Reading>,
}

/// Validate every target; errors name file:line:col of the entry.
pub fn targets(file: &ConfigFile, config: &Config) -> anyhow::Result<Vec<Target>> {
    if let Err(e) = config.decision.check() {
        // Where the key is written in the file, if it is (else it came from a flag or env var).
        let at = file.text.find("decision").unwrap_or(0);
        return Err(file.error_at(at, e));
    }
    let mut names = BTreeSet::new();
    let mut out = Vec::new();
    for spanned in &config.targets {
        let spec = spanned.get_ref();
        let err = |m: String| file.error_at(spanned.span().start, format!("target {:?}: {m}", spec.name));
        if spec.name.trim().is_empty() {
            return Err(err("the name is empty".into()));
        }
        if spec.failure_threshold == Some(0) || spec.recovery_threshold == Some(0) {
            return Err(err("failure-threshold and recovery-threshold must be at least 1".into()));
        }
        if !names.insert(spec.name.clone()) {
            return Err(err("the name is used twice".into()));
        }
        out.push(build(spec).map_err(err)?);
    }
    Ok(out)
}

fn build(spec: &TargetSpec) -> Result<Target, String> {
    let timeout = spec.timeout.map(|d| d.get()).unwrap_or(Duration::from_secs(10));
    if timeout.is_zero() {
        return Err("timeout must be more than 0s".into());
    }
    let interval = spec.interval.map(|d| d.get()).unwrap_or(Duration::from_secs(60));
    if interval < Duration::from_millis(100) {
        return Err("interval must be at least 100ms".into());
    }
    let address =
        || spec.address.clone().ok_or_else(|| format!("a {:?} target needs `address`", spec.kind).to_lowercase());
    let only = |set: bool, key: &str, kinds: &str| {
        if set {
            Err(format!("`{key}` is for {kinds} targets only"))
        } else {
            Ok(())
        }
    };
    only(spec.cert_valid_days.is_some() && spec.kind != Kind::Https, "cert-valid-days", "https")?;
    only(
        (spec.period.is_some() || spec.grace.is_some()) && spec.kind != Kind::Heartbeat,
        "period`/`grace",
        "heartbeat",
    )?;
    only(
        (spec.query.is_some() || spec.record_type.is_some() || spec.expect.is_some()) && spec.kind != Kind::Dns,
        "query`/`record-type`/`expect",
        "dns",
    )?;
    let how = match spec.kind {
        Kind::Http | Kind::Https => {
            let url = address()?;
            let parsed = reqwest::Url::parse(&url).map_err(|e| format!("address {url:?} is not a URL: {e}"))?;
            let resolve = match (spec.resolve, parsed.host_str()) {
                (Some(ip), Some(host)) => vec![(host.to_string(), ip)],
                _ => Vec::new(),
            };
            let regex = |r: &String| Regex::new(r).map_err(|e| format!("invalid body-regex: {e}"));
            if spec.cert_valid_days.is_some() && parsed.scheme() != "https" {
                return Err(format!("cert-valid-days needs an https:// address, got {url:?}"));
            }
            let check = Box::new(HttpCheck {
                request: Request::get(url),
                client: ClientOptions {
                    tls: TlsOptions { ca_file: spec.cacert.clone(), insecure: spec.insecure.unwrap_or(false) },
                    timeout,
                    follow_redirects: spec.follow_redirects.unwrap_or(false),
                    resolve,
                },
                expect_status: spec.expect_status.clone().unwrap_or_else(StatusSet::success),
                body_contains: spec.body_contains.clone(),
                body_regex: spec.body_regex.as_ref().map(regex).transpose()?,
                max_latency: spec.max_latency.map(|d| d.get()),
            });
            match spec.cert_valid_days {
                Some(days) => How::HttpCert(check, days),
                None => How::Http(check),
            }
        }
        Kind::Tcp => {
            let a = address()?;
            if !a.contains(':') {
                return Err(format!("address {a:?} must be host:port"));
            }
            How::Tcp(a)
        }
        Kind::Postgres => {
            let conninfo = address()?;
            let password = match (&spec.password_env, &spec.password_file) {
                (None, None) => None,
                (env, file) => secret::resolve("postgres password", env.as_deref(), file.as_deref(), "")
                    .map_err(|e| format!("{e:#}"))?,
            };
            How::Postgres { conninfo, password, ca_file: spec.cacert.clone() }
        }
        Kind::Command => match &spec.command {
            Some(argv) if !argv.is_empty() => How::Command(argv.clone()),
            _ => return Err("a command target needs `command = [\"program\", \"arg\"]`".into()),
        },
        Kind::Ups => How::Ups(Box::new(ups_check(spec, address()?)?)),
        Kind::Heartbeat => {
            let period =
                spec.period.map(|d| d.get()).ok_or("a heartbeat target needs `period` (how often it is pinged)")?;
            if period.is_zero() {
                return Err("period must be more than 0s".into());
            }
            if spec.address.is_some() || spec.command.is_some() {
                return Err("a heartbeat target is pinged, it has no `address` or `command`".into());
            }
            let grace = spec.grace.map(|d| d.get()).unwrap_or(crate::heartbeat::DEFAULT_GRACE);
            How::Heartbeat(crate::heartbeat::HeartbeatCheck { period, grace })
        }
        Kind::Dns => {
            let query = spec.query.as_deref().ok_or("a dns target needs `query` (the name asked)")?;
            let check = crate::dns::DnsCheck::new(
                &address()?,
                query,
                spec.record_type.as_deref().unwrap_or("A"),
                spec.expect.as_deref(),
            )?;
            How::Dns(Box::new(check))
        }
    };
    // A heartbeat is judged on each check: one late judgement is the outage.
    let default_threshold = |n: u32| if spec.kind == Kind::Heartbeat { 1 } else { n };
    Ok(Target {
        name: spec.name.clone(),
        kind: spec.kind,
        how,
        interval,
        timeout,
        failure_threshold: spec.failure_threshold.unwrap_or(default_threshold(3)).max(1),
        recovery_threshold: spec.recovery_threshold.unwrap_or(default_threshold(2)).max(1),
    })
}

impl Target {
    /// Probe once. Never fails: the outcome is data.
    pub async fn probe(&self, client: Option<&LeanClient>) -> Sample {
        let at = crate::clock::now_ms();
        let mut power = None;
        let result = match &self.how {
            How::Http(check) => match client {
                Some(c) if check.lean() => check.run_lean(c).await,
                _ => check.run().await,
            },
            How::Tcp(addr) => probe::tcp::check(addr, self.timeout).await,
            How::Postgres { conninfo, password, ca_file } => {
                probe::postgres::check_with_ca(conninfo, password.as_ref(), ca_file.as_deref(), self.timeout).await
            }
            How::Command(argv) => run_command(argv, self.timeout).await,
            How::Ups(check) => {
                let (result, reading) = read_ups(check, self.timeout).await;
                power = reading;
                result
            }
            How::HttpCert(check, days) => https_with_cert(check, *days).await,
            How::Heartbeat(_) => ProbeResult::fail(
                Duration::ZERO,
                probe::Failure::Unexpected,
                "heartbeat not judged: the history (where pings are kept) could not be read".to_string(),
            ),
            How::Dns(check) => check.check(self.timeout).await,
        };
        Sample {
            target: self.name.clone(),
            at,
            ok: result.ok,
            latency_ms: result.latency_ms,
            error: result.error.map(|e| e.chars().take(500).collect()),
            interval_ms: standby_common::duration::millis(self.interval),
            power,
        }
    }
}

/// Longest error [`one_line`] keeps, in characters.
pub const ERROR_LINE_MAX: usize = 200;

/// An error fit for one line of a terminal: whitespace runs (\r\n included) become one space,
/// other control characters are dropped, and it is cut to [`ERROR_LINE_MAX`] characters with `…`.
pub fn one_line(error: &str) -> String {
    let mut out = String::new();
    let mut count = 0;
    let mut space = false;
    for c in error.trim().chars() {
        if c.is_whitespace() {
            space = !out.is_empty();
            continue;
        }
        if c.is_control() {
            continue;
        }
        if std::mem::take(&mut space) {
            out.push(' ');
            count += 1;
        }
        if count >= ERROR_LINE_MAX {
            out.push('…');
            return out;
        }
        out.push(c);
        count += 1;
    }
    out
}

/// The HTTP check, then the certificate: failing when it expires within `days` days.
async fn https_with_cert(check: &HttpCheck, days: u32) -> ProbeResult {
    let client = match probe::http::client(&check.client) {
        Ok(c) => c,
        Err(e) => return ProbeResult::fail(Duration::ZERO, probe::Failure::Tls, format!("{e:#}")),
    };
    let resp =
        match probe::http::fetch(&client, &check.request, check.client.timeout, probe::http::DEFAULT_MAX_BODY).await {
            Ok(r) => r,
            Err(e) => return ProbeResult::fail(e.latency, e.failure, e.message),
        };
    let mut result = match check.unmet(&resp).or_else(|| cert_expiry_problem(resp.peer_certificate.as_deref(), days)) {
        None => ProbeResult::pass(resp.latency),
        Some(why) => ProbeResult::fail(resp.latency, probe::Failure::Tls, why),
    };
    result.status = Some(resp.status);
    result
}

/// Why a certificate (DER) fails `cert-valid-days = days`, if it does.
pub fn cert_expiry_problem(der: Option<&[u8]>, days: u32) -> Option<String> {
    let Some(der) = der else {
        return Some("no TLS certificate to check (cert-valid-days)".into());
    };
    let cert = match x509_parser::parse_x509_certificate(der) {
        Ok((_, cert)) => cert,
        Err(e) => return Some(format!("unreadable certificate: {e}")),
    };
    let not_after_ms = cert.validity().not_after.timestamp().saturating_mul(1000);
    let left_ms = not_after_ms - crate::clock::now_ms();
    if left_ms >= i64::from(days) * crate::clock::DAY_MS {
        return None;
    }
    let left_days = left_ms.div_euclid(crate::clock::DAY_MS);
    Some(format!(
        "the certificate expires in {} ({}), within cert-valid-days = {days}",
        if left_days < 1 { "less than a day".to_string() } else { format!("{left_days} day(s)") },
        crate::clock::fmt(not_after_ms)
    ))
}

fn ups_check(spec: &TargetSpec, address: String) -> Result<UpsCheck, String> {
    let ups = match &spec.ups {
        Some(u) if !u.trim().is_empty() && !u.contains(char::is_whitespace) => u.clone(),
        _ => return Err("a ups target needs `ups = \"NAME\"` (the UPS's name in upsd, no spaces)".into()),
    };
    if address.trim().is_empty() || address.contains(char::is_whitespace) || address.contains('/') {
        return Err(format!("address {address:?} must be host or host:port of upsd"));
    }
    let password = match (&spec.password_env, &spec.password_file) {
        (None, None) => None,
        (env, file) => {
            secret::resolve("upsd password", env.as_deref(), file.as_deref(), "").map_err(|e| format!("{e:#}"))?
        }
    };
    let auth = match (&spec.username, password) {
        (Some(username), Some(password)) => Some(standby_common::nut::Auth { username: username.clone(), password }),
        (None, None) => None,
        _ => return Err("`username` and a password (`password-env` or `password-file`) go together".into()),
    };
    Ok(UpsCheck { address, ups, auth, low_runtime: spec.low_runtime.map(|d| d.get()) })
}

/// Read the UPS: healthy unless upsd or the UPS cannot be read or the status is LB or OFF.
async fn read_ups(check: &UpsCheck, timeout: Duration) -> (ProbeResult, Option<standby_common::nut::Reading>) {
    let start = std::time::Instant::now();
    match standby_common::nut::read(&check.address, &check.ups, timeout, check.auth.as_ref()).await {
        Ok(r) => {
            let elapsed = start.elapsed();
            let result = if r.status.low_battery() || r.status.off() {
                let why = if r.status.off() { "the UPS's output is off" } else { "battery low" };
                ProbeResult::fail(elapsed, probe::Failure::Unexpected, format!("ups.status {}: {why}", r.status))
            } else {
                ProbeResult::pass(elapsed)
            };
            (result, Some(r))
        }
        Err(e) => (ProbeResult::fail(start.elapsed(), probe::Failure::Unreachable, format!("{e:#}")), None),
    }
}

async fn run_command(argv: &[String], timeout: Duration) -> ProbeResult {
    let cmd = Cmd::new(&argv[0]).args(&argv[1..]).timeout(timeout);
    let start = std::time::Instant::now();
    let done = tokio::task::spawn_blocking(move || cmd.run()).await;
    let elapsed = start.elapsed();
    match done {
        Ok(Ok(f)) if f.success() => ProbeResult::pass(elapsed),
        Ok(Ok(f)) => {
            let code = f.status.code().map(|c| c.to_string()).unwrap_or_else(|| "signal".into());
            let tail = f.stderr_tail();
            let out = if tail.trim().is_empty() { f.stdout_text() } else { tail };
            let last = out.lines().map(str::trim).rfind(|l| !l.is_empty()).unwrap_or("");
            let message = if last.is_empty() { format!("exit {code}") } else { format!("exit {code}: {last}") };
            ProbeResult::fail(elapsed, probe::Failure::Unexpected, message)
        }
        Ok(Err(e)) => ProbeResult::fail(elapsed, probe::Failure::Unreachable, format!("{e:#}")),
        Err(e) => ProbeResult::fail(elapsed, probe::Failure::Protocol, e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_becomes_one_bounded_line_without_control_characters() {
        assert_eq!(one_line("  503\r\n<html>\r\n\t<body>\x07down</body>\n"), "503 <html> <body>down</body>");
        let long = one_line(&"x".repeat(1000));
        assert_eq!(long.chars().count(), ERROR_LINE_MAX + 1);
        assert!(long.ends_with('…'));
    }
}
