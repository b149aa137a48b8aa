//! Is the old primary still there? `promote` asks the peer itself (TCP and libpq: does it
//! answer, and as a primary?) and every `peer-checks` entry — the old primary seen through
//! another path (its public URL, a port through a tunnel) — because with two sites a broken
//! private link must not make two primaries. Only silence counts as gone: a refused or timed
//! out connection, a non-2xx answer. Anything that answers blocks the promotion.

use std::time::Duration;

use standby_common::exit::{self, Code};
use standby_common::pg::{ConnectOptions, Failure};
use standby_common::probe::{self, HttpCheck};

/// The outcome of one look at the old primary.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Sighting {
    /// What was asked: `peer (host:port)` or the peer-check as written.
    pub what: String,
    /// True when it answered (the promotion is refused).
    pub answers: bool,
    pub detail: String,
}

/// Refuse a peer-check that is not `http://`, `https://` or `tcp://host:port` (exit 2).
pub fn validate(check: &str) -> anyhow::Result<()> {
    let ok = if let Some(addr) = check.strip_prefix("tcp://") {
        addr.rsplit_once(':').is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok())
    } else {
        (check.starts_with("http://") || check.starts_with("https://")) && url::Url::parse(check).is_ok()
    };
    if ok {
        Ok(())
    } else {
        Err(exit::error(
            Code::Usage,
            format!("peer-checks: {check:?} is not an http://, https:// or tcp://host:port address"),
        ))
    }
}

/// Ask the peer node itself: reachable and not in recovery means it is still a primary.
pub fn ask_peer(options: &ConnectOptions) -> Sighting {
    let what = format!("peer ({})", options.server());
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => return Sighting { what, answers: true, detail: format!("cannot ask: {e}") },
    };
    runtime.block_on(async {
        match options.try_connect().await {
            Ok(client) => {
                let answer = client.query_value::<bool, _>("SELECT pg_is_in_recovery()", &[]).await;
                client.close().await;
                match answer {
                    Ok(true) => Sighting { what, answers: false, detail: "answers as a standby (in recovery)".into() },
                    Ok(false) => Sighting { what, answers: true, detail: "answers as a primary".into() },
                    Err(e) => Sighting { what, answers: true, detail: format!("answers, but not its role: {e:#}") },
                }
            }
            Err(e) => match e.failure() {
                Failure::Unreachable | Failure::Timeout => Sighting { what, answers: false, detail: e.to_string() },
                _ => Sighting {
                    what,
                    answers: true,
                    detail: format!(
                        "something answers there, its role unknown: {}",
                        standby_common::probe::error_chain(&e)
                    ),
                },
            },
        }
    })
}

/// Run every peer-check at once; each a [`Sighting`].
pub fn run_checks(checks: &[String], timeout: Duration) -> Vec<Sighting> {
    if checks.is_empty() {
        return Vec::new();
    }
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            return checks
                .iter()
                .map(|c| Sighting { what: c.clone(), answers: true, detail: format!("cannot check: {e}") })
                .collect()
        }
    };
    runtime.block_on(async {
        // Started together: a dead path costs one timeout, not one per check.
        let handles: Vec<_> = checks.iter().cloned().map(|check| tokio::spawn(look(check, timeout))).collect();
        let mut out = Vec::with_capacity(handles.len());
        for (handle, check) in handles.into_iter().zip(checks) {
            out.push(handle.await.unwrap_or_else(|e| Sighting {
                what: check.clone(),
                answers: true,
                detail: format!("the check failed: {e}"),
            }));
        }
        out
    })
}

async fn look(check: String, timeout: Duration) -> Sighting {
    let result = if let Some(addr) = check.strip_prefix("tcp://") {
        probe::tcp::check(addr, timeout).await
    } else {
        let mut http = HttpCheck::new(check.clone());
        http.client.timeout = timeout;
        http.run().await
    };
    let detail = if result.ok {
        match result.status {
            Some(s) => format!("answers (HTTP {s})"),
            None => "answers (TCP connection accepted)".to_string(),
        }
    } else {
        result.error.clone().unwrap_or_else(|| "no answer".into())
    };
    Sighting { what: check, answers: result.ok, detail }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_checks_are_urls_or_tcp_addresses() {
        assert!(validate("https://app.example.com/health").is_ok());
        assert!(validate("tcp://203.0.113.10:5432").is_ok());
        assert_eq!(exit::code_of(&validate("tcp://203.0.113.10").unwrap_err()), Code::Usage);
        assert_eq!(exit::code_of(&validate("ftp://x").unwrap_err()), Code::Usage);
    }
}
