//! Health checks of the primary, the backup and the control targets: an `http(s)://` URL
//! (any 2xx, TLS verified) or `tcp://host:port` (a connection opens). By address: a check
//! never resolves the record it switches.

use std::time::Duration;

use serde::{Serialize, Serializer};
use standby_common::probe::http::{ClientOptions, HttpCheck};
use standby_common::probe::{tcp, ProbeResult};

/// A health check, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    Http { url: String, host: String },
    Tcp { address: String, host: String },
}

impl Serialize for Probe {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&standby_common::secret::redact(&self.url()))
    }
}

impl Probe {
    /// `http://…`, `https://…` or `tcp://host:port`.
    pub fn parse(text: &str) -> Result<Probe, String> {
        let text = text.trim();
        if let Some(address) = text.strip_prefix("tcp://") {
            let address = address.trim_end_matches('/');
            let (host, port) = address.rsplit_once(':').ok_or_else(|| format!("{text:?}: expected tcp://host:port"))?;
            port.parse::<u16>().map_err(|_| format!("{text:?}: {port:?} is not a port"))?;
            let host = host.trim_matches(['[', ']']).to_string();
            return Ok(Probe::Tcp { address: address.to_string(), host });
        }
        if text.starts_with("http://") || text.starts_with("https://") {
            let url = url::Url::parse(text).map_err(|e| format!("{text:?}: {e}"))?;
            let host = url.host_str().ok_or_else(|| format!("{text:?}: no host"))?;
            let host = host.trim_matches(['[', ']']).to_string();
            return Ok(Probe::Http { url: text.to_string(), host });
        }
        Err(format!("{text:?}: expected an http://, https:// or tcp:// URL"))
    }

    /// The host it connects to.
    pub fn host(&self) -> &str {
        match self {
            Probe::Http { host, .. } | Probe::Tcp { host, .. } => host,
        }
    }

    /// As written.
    pub fn url(&self) -> String {
        match self {
            Probe::Http { url, .. } => url.clone(),
            Probe::Tcp { address, .. } => format!("tcp://{address}"),
        }
    }

    /// Run the check once.
    pub async fn run(&self, timeout: Duration) -> ProbeResult {
        match self {
            Probe::Http { url, .. } => {
                let mut check = HttpCheck::new(url.clone());
                check.client = ClientOptions { timeout, ..ClientOptions::default() };
                check.run().await
            }
            Probe::Tcp { address, .. } => tcp::check(address, timeout).await,
        }
    }
}

/// Whether any control target answers (true when none is configured): a monitor that
/// reaches none of them is isolated, and its failed checks say nothing about the primary.
pub async fn reaches_the_world(control: &[Probe], timeout: Duration) -> (bool, Vec<ProbeResult>) {
    if control.is_empty() {
        return (true, Vec::new());
    }
    let results = futures_util::future::join_all(control.iter().map(|p| p.run(timeout))).await;
    (results.iter().any(|r| r.ok), results)
}
