//! PostgreSQL probe: connect, run `SELECT 1`, disconnect. The password, if any, is a
//! [`Secret`] passed apart from the connection string so it is never printed.
//!
//! Connections use TLS when the server offers it (`sslmode=prefer`, the default) or must
//! (`sslmode=require`), and the certificate is always verified: against the system's roots,
//! Mozilla's, and an optional extra CA file. `sslmode=disable` turns TLS off.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio_postgres_rustls::MakeRustlsConnect;

use super::{error_chain, Failure, ProbeResult};
use crate::exit::{Code, CodedResult};
use crate::secret::Secret;

/// The TLS connector for PostgreSQL connections: verified certificates only. A CA file that
/// cannot be read is a usage error.
pub fn tls(ca_file: Option<&Path>) -> anyhow::Result<MakeRustlsConnect> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    if let Some(path) = ca_file {
        let pem =
            std::fs::read(path).with_context(|| format!("cannot read CA file {}", path.display())).code(Code::Usage)?;
        let mut added = 0;
        for cert in rustls_pemfile::certs(&mut pem.as_slice()).flatten() {
            if roots.add(cert).is_ok() {
                added += 1;
            }
        }
        if added == 0 {
            return Err(crate::exit::error(Code::Usage, format!("{}: no certificate in file", path.display())));
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS set-up")?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

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
    let tls = match tls(ca_file) {
        Ok(t) => t,
        Err(e) => return ProbeResult::fail(start.elapsed(), Failure::Tls, format!("{e:#}")),
    };
    let mut config: tokio_postgres::Config = match conninfo.parse() {
        Ok(c) => c,
        Err(e) => return ProbeResult::fail(start.elapsed(), Failure::Protocol, format!("invalid conninfo: {e}")),
    };
    if let Some(p) = password {
        config.password(p.expose());
    }
    config.connect_timeout(timeout);
    let work = async {
        let (client, connection) = config.connect(tls).await?;
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
            let lower = text.to_lowercase();
            let failure = if e.as_db_error().is_some() {
                Failure::Unexpected
            } else if lower.contains("certificate") || lower.contains("tls") || lower.contains("ssl") {
                Failure::Tls
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
