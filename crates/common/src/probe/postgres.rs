//! PostgreSQL probe: connect, run `SELECT 1`, disconnect. The password, if any, is a
//! [`Secret`] passed apart from the connection string so it is never printed.

use std::time::{Duration, Instant};

use super::{error_chain, Failure, ProbeResult};
use crate::secret::Secret;

/// Connect with a libpq-style `conninfo` (`host=127.0.0.1 port=5432 user=postgres
/// dbname=postgres`, or a `postgresql://` URL) and run `SELECT 1`.
pub async fn check(conninfo: &str, password: Option<&Secret>, timeout: Duration) -> ProbeResult {
    let start = Instant::now();
    let mut config: tokio_postgres::Config = match conninfo.parse() {
        Ok(c) => c,
        Err(e) => return ProbeResult::fail(start.elapsed(), Failure::Protocol, format!("invalid conninfo: {e}")),
    };
    if let Some(p) = password {
        config.password(p.expose());
    }
    config.connect_timeout(timeout);
    let work = async {
        let (client, connection) = config.connect(tokio_postgres::NoTls).await?;
        let conn = tokio::spawn(connection);
        let rows = client.simple_query("SELECT 1").await;
        drop(client);
        let _ = conn.await;
        rows
    };
    match tokio::time::timeout(timeout, work).await {
        Ok(Ok(_)) => ProbeResult::pass(start.elapsed()),
        Ok(Err(e)) => {
            let text = error_chain(&e);
            let failure = if e.as_db_error().is_some() {
                Failure::Unexpected
            } else if text.contains("refused") || text.contains("error connecting") {
                Failure::Unreachable
            } else {
                Failure::Protocol
            };
            ProbeResult::fail(start.elapsed(), failure, text)
        }
        Err(_) => {
            ProbeResult::fail(start.elapsed(), Failure::Timeout, format!("no answer to SELECT 1 within {timeout:?}"))
        }
    }
}
