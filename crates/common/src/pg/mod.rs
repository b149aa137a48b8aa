//! The PostgreSQL client every standby tool uses: one way to connect (conninfo or
//! `postgres://` URL, a bounded timeout over TCP *and* the start-up handshake, verified TLS,
//! the password from a [`Secret`] or `~/.pgpass`) and query helpers whose errors name the
//! server and carry their exit code.
//!
//! - [`ConnectOptions::connect`] gives an async [`Client`]; [`ConnectOptions::connect_blocking`]
//!   a [`BlockingClient`] for sync code (see its docs for use near a tokio runtime).
//! - Exit codes: a server that cannot be reached, refuses the TCP connection, fails the TLS
//!   handshake or says nothing within the timeout is [`Code::Unavailable`] (4); a login the
//!   server rejects (wrong or missing password, unknown user or database) and a bad
//!   connection string or CA file are [`Code::Usage`] (2, the configuration is wrong); a
//!   failed query is [`Code::Failed`] (1). [`db_error`] finds the server's SQLSTATE.
//! - The blocking client may be called from any thread, inside a runtime or not (see
//!   `BlockingClient`'s module docs for the cost inside one).
//! - TLS: `sslmode=prefer` (the default: TLS when the server offers it), `require` or
//!   `disable`. Certificates are always verified, against the system's roots, Mozilla's and an
//!   optional extra CA file.
//! - The password: the [`Secret`] given, else one in the connection string, else the first
//!   matching line of `$PGPASSFILE` or `~/.pgpass` ([`passfile`]). It is never put into a
//!   connection string and never printed: errors name `host:port`, not the conninfo.

mod blocking;
mod client;
pub mod passfile;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Context;
use tokio_postgres::config::Host;
use tokio_postgres_rustls::MakeRustlsConnect;

pub use blocking::BlockingClient;
pub use client::Client;
pub use tokio_postgres::error::{DbError, SqlState};
pub use tokio_postgres::types;
pub use tokio_postgres::{Row, Statement, ToStatement};

use crate::exit::{self, Code, CodedResult};
use crate::secret::Secret;

/// How long a connection may take (TCP connect, TLS, start-up and login) unless told otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The TLS connector for PostgreSQL connections: verified certificates only, against the
/// system's roots, Mozilla's and `ca_file`. A CA file that cannot be read is a usage error.
pub fn tls(ca_file: Option<&Path>) -> anyhow::Result<MakeRustlsConnect> {
    let mut roots = base_roots().clone();
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
            return Err(exit::error(Code::Usage, format!("{}: no certificate in file", path.display())));
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

/// Mozilla's roots and the system's, read once per process (a monitor connects every minute).
fn base_roots() -> &'static rustls::RootCertStore {
    static ROOTS: OnceLock<rustls::RootCertStore> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        roots
    })
}

/// Where and how to connect. Built from a conninfo, then refined:
///
/// ```no_run
/// # async fn f() -> anyhow::Result<()> {
/// use standby_common::pg::ConnectOptions;
/// let client = ConnectOptions::parse("host=127.0.0.1 port=5432 user=postgres dbname=postgres")?
///     .timeout(std::time::Duration::from_secs(5))
///     .connect()
///     .await?;
/// let in_recovery: bool = client.query_value("SELECT pg_is_in_recovery()", &[]).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct ConnectOptions {
    config: tokio_postgres::Config,
    password: Option<Secret>,
    ca_file: Option<PathBuf>,
    passfile: Option<PathBuf>,
    timeout: Duration,
    server: String,
}

impl fmt::Debug for ConnectOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // tokio_postgres::Config's Debug already hides its password.
        f.debug_struct("ConnectOptions")
            .field("server", &self.server)
            .field("config", &self.config)
            .field("password", &self.password)
            .field("ca_file", &self.ca_file)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl ConnectOptions {
    /// A libpq-style conninfo (`host=127.0.0.1 port=5432 user=postgres dbname=postgres`) or a
    /// `postgres://` URL. A string that does not parse, or names no user, is a usage error
    /// (the message shows it with any password replaced by `***`).
    pub fn parse(conninfo: &str) -> anyhow::Result<ConnectOptions> {
        let config: tokio_postgres::Config = conninfo.parse().map_err(|e| {
            exit::error(
                Code::Usage,
                format!("invalid PostgreSQL connection string {:?}: {e}", crate::secret::redact(conninfo)),
            )
        })?;
        if config.get_user().is_none() {
            return Err(exit::error(
                Code::Usage,
                format!(
                    "PostgreSQL connection string {:?} names no user (add user=...)",
                    crate::secret::redact(conninfo)
                ),
            ));
        }
        let server = describe_server(&config);
        Ok(ConnectOptions { config, password: None, ca_file: None, passfile: None, timeout: DEFAULT_TIMEOUT, server })
    }

    /// The password to log in with; it wins over one in the connection string or a passfile.
    pub fn password(mut self, password: Option<Secret>) -> Self {
        self.password = password;
        self
    }

    /// An extra CA certificate (PEM) to trust for the server's certificate.
    pub fn ca_file(mut self, ca_file: Option<PathBuf>) -> Self {
        self.ca_file = ca_file;
        self
    }

    /// A password file to use instead of `$PGPASSFILE` / `~/.pgpass`.
    pub fn passfile(mut self, path: Option<PathBuf>) -> Self {
        self.passfile = path;
        self
    }

    /// The bound on the whole connection: TCP connect, TLS, start-up and login.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Server settings for the session, as libpq's `options` (`-c statement_timeout=60000`).
    pub fn options(mut self, options: &str) -> Self {
        self.config.options(options);
        self
    }

    /// `host:port` (several joined by `,`; a Unix socket as its path), for messages.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// The database name (the user's name when none is given, as PostgreSQL does).
    pub fn dbname(&self) -> &str {
        self.config.get_dbname().or(self.config.get_user()).unwrap_or("")
    }

    /// Connect, or fail with an error that carries its exit code (see the module docs).
    pub async fn connect(&self) -> anyhow::Result<Client> {
        self.try_connect().await.map_err(Error::into_anyhow)
    }

    /// [`connect`](Self::connect) with the error as a [`struct@Error`], for callers that act on
    /// the kind of failure (a probe reports it instead of failing).
    pub async fn try_connect(&self) -> Result<Client, Error> {
        let tls = tls(self.ca_file.as_deref())
            .map_err(|e| Error::new(&self.server, Failure::Config, format!("{e:#}"), None))?;
        let mut config = self.config.clone();
        if let Some(p) = self.login_password() {
            config.password(p.expose());
        }
        config.connect_timeout(self.timeout);
        match tokio::time::timeout(self.timeout, config.connect(tls)).await {
            Ok(Ok((client, connection))) => Ok(Client::new(client, connection, &self.server)),
            Ok(Err(e)) => {
                let failure = classify_connect(&e);
                let what = match failure {
                    Failure::Timeout => format!("no answer within {}", humantime::format_duration(self.timeout)),
                    Failure::Unreachable => "cannot connect".to_string(),
                    Failure::Tls => "TLS failed".to_string(),
                    Failure::Rejected => "the server refused the connection".to_string(),
                    Failure::Config => "cannot log in".to_string(),
                    _ => "the connection failed".to_string(),
                };
                Err(Error::new(&self.server, failure, what, Some(e)))
            }
            Err(_) => Err(Error::new(
                &self.server,
                Failure::Timeout,
                format!(
                    "no answer within {} (TCP connect, TLS and start-up together)",
                    humantime::format_duration(self.timeout)
                ),
                None,
            )),
        }
    }

    /// Connect for sync code: a [`BlockingClient`] with its own small runtime.
    pub fn connect_blocking(&self) -> anyhow::Result<BlockingClient> {
        BlockingClient::connect(self)
    }

    /// The password for this login, or `None` (the server may not ask for one).
    fn login_password(&self) -> Option<Secret> {
        if let Some(p) = &self.password {
            return Some(p.clone());
        }
        if let Some(p) = self.config.get_password() {
            return Some(Secret::new(String::from_utf8_lossy(p).into_owned()));
        }
        let path = self.passfile.clone().or_else(passfile::default_path)?;
        let host = match self.config.get_hosts().first() {
            Some(Host::Tcp(h)) => h.clone(),
            Some(Host::Unix(dir)) => passfile::socket_host(dir),
            None => "localhost".to_string(),
        };
        let port = self.config.get_ports().first().copied().unwrap_or(5432);
        let user = self.config.get_user().unwrap_or("");
        passfile::lookup(&path, &host, port, self.dbname(), user)
    }
}

/// `host:port` for each host of a config, joined by `,`.
fn describe_server(config: &tokio_postgres::Config) -> String {
    let ports = config.get_ports();
    let hosts = config.get_hosts();
    if hosts.is_empty() {
        return format!("localhost:{}", ports.first().copied().unwrap_or(5432));
    }
    hosts
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
            match h {
                Host::Tcp(name) if name.contains(':') => format!("[{name}]:{port}"),
                Host::Tcp(name) => format!("{name}:{port}"),
                Host::Unix(dir) => format!("{}/.s.PGSQL.{port}", dir.display()),
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// What went wrong, coarse enough to act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The connection string or CA file is unusable, or the server asks for a password and
    /// none was given (exit 2).
    Config,
    /// Nothing listens, no route, the name does not resolve (exit 4).
    Unreachable,
    /// No complete answer within the timeout (exit 4).
    Timeout,
    /// TLS handshake or certificate verification failed, or TLS is required and not offered (exit 4).
    Tls,
    /// The server answered the start-up with an error: wrong password, unknown user or
    /// database (exit 2), or it is starting up / full (exit 4).
    Rejected,
    /// The server answered, but not as PostgreSQL should (exit 4).
    Protocol,
    /// A query failed, or its answer was not what the caller asked for (exit 1).
    Query,
}

/// A PostgreSQL error: the server it concerns, what failed, and the driver's error as source.
/// Its message never holds the password or the connection string.
#[derive(Debug)]
pub struct Error {
    server: String,
    failure: Failure,
    what: String,
    source: Option<tokio_postgres::Error>,
}

impl Error {
    fn new(server: &str, failure: Failure, what: String, source: Option<tokio_postgres::Error>) -> Error {
        Error { server: server.to_string(), failure, what, source }
    }

    /// `host:port` of the server.
    pub fn server(&self) -> &str {
        &self.server
    }

    pub fn failure(&self) -> Failure {
        self.failure
    }

    /// The server's own error (SQLSTATE, message), when it sent one.
    pub fn db_error(&self) -> Option<&DbError> {
        self.source.as_ref().and_then(|e| e.as_db_error())
    }

    /// The exit code this error means (see the module docs).
    pub fn code(&self) -> Code {
        match self.failure {
            Failure::Config => Code::Usage,
            Failure::Query => Code::Failed,
            Failure::Rejected => match self.db_error().map(DbError::code) {
                Some(state) if state.code().starts_with("28") || *state == SqlState::INVALID_CATALOG_NAME => {
                    Code::Usage
                }
                _ => Code::Unavailable,
            },
            Failure::Unreachable | Failure::Timeout | Failure::Tls | Failure::Protocol => Code::Unavailable,
        }
    }

    /// As an `anyhow::Error` that carries [`code`](Self::code).
    pub fn into_anyhow(self) -> anyhow::Error {
        exit::with_code(self.code(), anyhow::Error::new(self))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PostgreSQL {}: {}", self.server, self.what)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_ref().map(|e| e as _)
    }
}

/// The server's error in an error chain from this module (`None` for a timeout, a refused
/// connection, an error from elsewhere): to act on a SQLSTATE.
pub fn db_error(err: &anyhow::Error) -> Option<&DbError> {
    err.chain().find_map(|e| {
        e.downcast_ref::<DbError>()
            .or_else(|| e.downcast_ref::<tokio_postgres::Error>().and_then(tokio_postgres::Error::as_db_error))
    })
}

/// Why a connection attempt failed, from the driver's error.
fn classify_connect(e: &tokio_postgres::Error) -> Failure {
    if e.as_db_error().is_some() {
        return Failure::Rejected;
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    let mut text = String::new();
    while let Some(err) = source {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionRefused, ConnectionReset, TimedOut};
            match io.kind() {
                TimedOut => return Failure::Timeout,
                // A server that is stopping accepts, then resets: gone, not a protocol fault.
                ConnectionRefused | ConnectionReset | ConnectionAborted | BrokenPipe => return Failure::Unreachable,
                _ => {}
            }
        }
        text.push_str(&err.to_string().to_lowercase());
        text.push(' ');
        source = err.source();
    }
    if text.starts_with("invalid configuration") {
        // Typically "password missing": the server asks for a password and none was given.
        Failure::Config
    } else if text.contains("certificate") || text.contains("tls") || text.contains("ssl") {
        Failure::Tls
    } else if text.contains("error connecting") {
        Failure::Unreachable
    } else {
        Failure::Protocol
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_are_named_without_credentials() {
        let o = ConnectOptions::parse("postgres://mon:hunter2@db.example:5433/history").unwrap();
        assert_eq!(o.server(), "db.example:5433");
        assert_eq!(o.dbname(), "history");
        assert!(!format!("{o:?}").contains("hunter2"));
        let o = ConnectOptions::parse("host=a,b port=1,2 user=u").unwrap();
        assert_eq!(o.server(), "a:1,b:2");
        assert_eq!(o.dbname(), "u");
        let o = ConnectOptions::parse("host=/run/pg user=u").unwrap();
        assert_eq!(o.server(), "/run/pg/.s.PGSQL.5432");
    }

    #[test]
    fn bad_conninfo_is_a_usage_error_that_hides_the_password() {
        let err = ConnectOptions::parse("host=db port=x password=hunter2 user=u").unwrap_err();
        assert_eq!(exit::code_of(&err), Code::Usage);
        assert!(!format!("{err:#}").contains("hunter2"), "{err:#}");
        let err = ConnectOptions::parse("host=db").unwrap_err();
        assert_eq!(exit::code_of(&err), Code::Usage);
        assert!(format!("{err:#}").contains("user"), "{err:#}");
    }
}
