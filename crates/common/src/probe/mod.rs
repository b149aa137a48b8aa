//! Health checks with a timeout and a latency: HTTP(S) with expectations ([`http`]), TCP
//! connect ([`tcp`]) and PostgreSQL connect-and-`SELECT 1` ([`postgres`]). A probe never
//! fails with an error: a refused, slow or wrong answer is a [`ProbeResult`] that says why,
//! because for a monitor a failed check is data.

pub mod http;
pub mod lean;
pub mod postgres;
pub mod status;
pub mod tcp;
pub mod tls;

use std::fmt;
use std::time::Duration;

use serde::Serialize;

pub use http::{HttpCheck, HttpResponse, TlsOptions};
pub use status::StatusSet;

/// Why a probe failed, coarse enough to act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Failure {
    /// Connection refused, no route, name not resolved: nothing answered.
    Unreachable,
    /// No (complete) answer within the timeout.
    Timeout,
    /// TLS handshake or certificate verification failed.
    Tls,
    /// The server answered, but not as HTTP/PostgreSQL should (or redirected in a loop).
    Protocol,
    /// An answer that does not meet the expectations (status, body, latency, query).
    Unexpected,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Failure::Unreachable => "unreachable",
            Failure::Timeout => "timeout",
            Failure::Tls => "tls",
            Failure::Protocol => "protocol",
            Failure::Unexpected => "unexpected",
        })
    }
}

/// The outcome of one probe.
#[derive(Debug, Clone, Serialize)]
pub struct ProbeResult {
    pub ok: bool,
    /// Time from the start of the probe to its end (answer read, or failure).
    pub latency_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
    /// What went wrong, for a person: the expectation and what came back.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// HTTP status, when there was an answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
}

impl ProbeResult {
    pub fn pass(latency: Duration) -> Self {
        ProbeResult { ok: true, latency_ms: ms_of(latency), failure: None, error: None, status: None }
    }

    pub fn fail(latency: Duration, failure: Failure, error: impl Into<String>) -> Self {
        ProbeResult {
            ok: false,
            latency_ms: ms_of(latency),
            failure: Some(failure),
            error: Some(error.into()),
            status: None,
        }
    }
}

impl fmt::Display for ProbeResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.ok, &self.error) {
            (true, _) => write!(f, "ok in {:.0} ms", self.latency_ms),
            (false, Some(e)) => write!(f, "FAIL after {:.0} ms: {e}", self.latency_ms),
            (false, None) => write!(f, "FAIL after {:.0} ms", self.latency_ms),
        }
    }
}

/// Milliseconds with two decimals, as reports show latency.
pub fn ms_of(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0 * 100.0).round() / 100.0
}

/// The messages of an error and its sources, joined: the useful part of a reqwest or io
/// error is often three levels down ("connection refused", "certificate expired").
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = vec![err.to_string()];
    let mut source = err.source();
    while let Some(e) = source {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = e.source();
    }
    parts.join(": ")
}
