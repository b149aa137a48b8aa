//! TCP probe: can a connection be opened within the timeout?

use std::time::{Duration, Instant};

use super::{Failure, ProbeResult};

/// Connect to `address` (`host:port`), then close.
pub async fn check(address: &str, timeout: Duration) -> ProbeResult {
    let start = Instant::now();
    match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(address)).await {
        Ok(Ok(_stream)) => ProbeResult::pass(start.elapsed()),
        Ok(Err(e)) => ProbeResult::fail(start.elapsed(), Failure::Unreachable, format!("{address}: {e}")),
        Err(_) => {
            ProbeResult::fail(start.elapsed(), Failure::Timeout, format!("{address}: no connection within {timeout:?}"))
        }
    }
}
