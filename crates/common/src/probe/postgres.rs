//! PostgreSQL probe: connect, run `SELECT 1`, disconnect, through [`crate::pg`] (the
//! password, if any, is a [`Secret`] kept apart from the connection string, so it is never
//! printed).
//!
//! Connections use TLS when the server offers it (`sslmode=prefer`, the default) or must
//! (`sslmode=require`), and the certificate is always verified: against the system's roots,
//! Mozilla's, and an optional extra CA file. `sslmode=disable` turns TLS off.

use std::path::Path;
use std::time::{Duration, Instant};

use super::{error_chain, Failure, ProbeResult};
use crate::pg::{self, ConnectOptions};
use crate::secret::Secret;

/// The TLS connector for PostgreSQL connections (kept here for callers; it lives in [`pg`]).
pub use crate::pg::tls;

/// Connect with a libpq-style `conninfo` (`host=127.0.0.1 port=5432 user=postgres
/// dbname=postgres`, or a `postgresql://` URL) and run `SELECT 1`.
pub async fn check(conninfo: &str, password: Option<&Secret>, timeout: Duration) -> ProbeResult {
    check_with_ca(conninfo, password, None, timeout).await
}

/// [`check`], trusting an extra CA file too.
pub async fn check_with_ca(
    conninfo: &str,
    password: Option<&Secret>,
    ca_file: Option<&Path>,
    timeout: Duration,
) -> ProbeResult {
    let start = Instant::now();
    if let Err(e) = tls(ca_file) {
        return ProbeResult::fail(start.elapsed(), Failure::Tls, format!("{e:#}"));
    }
    let options = match ConnectOptions::parse(conninfo) {
        Ok(o) => o.password(password.cloned()).ca_file(ca_file.map(Path::to_path_buf)).timeout(timeout),
        Err(e) => return ProbeResult::fail(start.elapsed(), Failure::Protocol, format!("{e:#}")),
    };
    let work = async {
        let client = options.try_connect().await.map_err(|e| (failure_of(e.failure()), error_chain(&e)))?;
        let rows = client.raw().simple_query("SELECT 1").await;
        client.close().await;
        rows.map(drop).map_err(|e| {
            let failure = if e.as_db_error().is_some() { Failure::Unexpected } else { Failure::Protocol };
            (failure, error_chain(&e))
        })
    };
    match tokio::time::timeout(timeout, work).await {
        Ok(Ok(())) => ProbeResult::pass(start.elapsed()),
        Ok(Err((failure, text))) => ProbeResult::fail(start.elapsed(), failure, text),
        Err(_) => {
            ProbeResult::fail(start.elapsed(), Failure::Timeout, format!("no answer to SELECT 1 within {timeout:?}"))
        }
    }
}

/// The probe's word for a connection failure.
fn failure_of(f: pg::Failure) -> Failure {
    match f {
        pg::Failure::Unreachable => Failure::Unreachable,
        pg::Failure::Timeout => Failure::Timeout,
        pg::Failure::Tls => Failure::Tls,
        pg::Failure::Rejected | pg::Failure::Query => Failure::Unexpected,
        pg::Failure::Config | pg::Failure::Protocol => Failure::Protocol,
    }
}
