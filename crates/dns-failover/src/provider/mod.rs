//! DNS providers behind one interface: read a record set's values, replace them with others
//! (exactly the wanted values remain; TTL and Cloudflare's proxying kept as found unless
//! the record sets them), count the API calls made. Network errors, 429 (with its
//! Retry-After) and 5xx answers are retried within a budget; then the error says what the
//! provider answered, and nothing is left half-written: a replacement first adds the new
//! values and only then removes the old ones, and is read back.

pub mod cloudflare;
pub mod powerdns;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use standby_common::retry::{Backoff, Budget, Verdict};

use crate::config::{Config, ProviderKind};
use crate::record::Record;

/// A record set as the provider holds it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RecordSet {
    /// The values, normalised (sorted).
    pub values: Vec<String>,
    pub ttl: Option<u32>,
    pub proxied: Option<bool>,
}

/// The providers a config uses, built once (tokens read, clients made).
pub struct Providers {
    cloudflare: Option<cloudflare::Cloudflare>,
    powerdns: Option<powerdns::PowerDns>,
    calls: Arc<AtomicU64>,
}

impl Providers {
    /// The providers the records need; a provider without credentials is a usage error.
    pub fn for_records(config: &Config, records: &[Record], timeout: Duration) -> anyhow::Result<Providers> {
        let calls = Arc::new(AtomicU64::new(0));
        let uses = |kind| records.iter().any(|r| r.provider == kind);
        let cloudflare = uses(ProviderKind::Cloudflare)
            .then(|| cloudflare::Cloudflare::new(&config.cloudflare, timeout, calls.clone()))
            .transpose()?;
        let powerdns = uses(ProviderKind::Powerdns)
            .then(|| powerdns::PowerDns::new(&config.powerdns, timeout, calls.clone()))
            .transpose()?;
        Ok(Providers { cloudflare, powerdns, calls })
    }

    /// API requests sent so far (retries included).
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// The record set at the provider now.
    pub async fn read(&self, record: &Record) -> anyhow::Result<RecordSet> {
        match record.provider {
            ProviderKind::Cloudflare => self.cloudflare()?.read(record).await,
            ProviderKind::Powerdns => self.powerdns()?.read(record).await,
        }
    }

    /// Replace the record set's values with `values`, then read it back: an error unless
    /// the provider now holds exactly `values`.
    pub async fn replace(&self, record: &Record, values: &[String]) -> anyhow::Result<RecordSet> {
        match record.provider {
            ProviderKind::Cloudflare => self.cloudflare()?.replace(record, values).await?,
            ProviderKind::Powerdns => self.powerdns()?.replace(record, values).await?,
        }
        let now = self.read(record).await?;
        if now.values != values {
            anyhow::bail!(
                "{}: after the write the provider holds [{}], not [{}]",
                record.name,
                now.values.join(", "),
                values.join(", ")
            );
        }
        Ok(now)
    }

    fn cloudflare(&self) -> anyhow::Result<&cloudflare::Cloudflare> {
        self.cloudflare.as_ref().ok_or_else(|| anyhow::anyhow!("no Cloudflare provider configured"))
    }

    fn powerdns(&self) -> anyhow::Result<&powerdns::PowerDns> {
        self.powerdns.as_ref().ok_or_else(|| anyhow::anyhow!("no PowerDNS provider configured"))
    }
}

/// An API call that failed: whether trying again may help.
#[derive(Debug)]
pub struct ApiError {
    pub message: String,
    pub retryable: bool,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ApiError {}

/// How API calls are retried: 4 tries within 20 s, a server's Retry-After obeyed up to 10 s.
pub fn retry_policy() -> (Backoff, Budget) {
    (
        Backoff { attempts: 4, base: Duration::from_millis(250), max: Duration::from_secs(2) },
        Budget { total: Duration::from_secs(20), max_retry_after: Duration::from_secs(10) },
    )
}

/// The retry verdict of an API error.
pub fn verdict(err: &anyhow::Error) -> Verdict {
    let retryable = err.chain().any(|e| e.downcast_ref::<ApiError>().is_some_and(|a| a.retryable));
    Verdict::of(err, retryable)
}

/// Classify a transport error (no answer): always worth a retry.
/// (the caller's context names the provider and the call).
pub fn transport_error(err: &reqwest::Error) -> anyhow::Error {
    let detail = standby_common::secret::redact(&standby_common::probe::error_chain(err));
    anyhow::Error::new(ApiError { message: format!("no answer: {detail}"), retryable: true })
}
