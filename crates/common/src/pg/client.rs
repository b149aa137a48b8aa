//! The async PostgreSQL client: tokio-postgres's client with helpers whose errors name the
//! server and exit 1, and the connection task that drives it.

use std::time::Duration;

use tokio_postgres::types::{FromSqlOwned, ToSql};
use tokio_postgres::{Row, Statement, ToStatement};

use super::{Error, Failure};

/// A connected client. Queries take `$1, $2, ...` parameters as tokio-postgres does; every
/// error names the server and carries exit code 1 ([`crate::exit::Code::Failed`]).
///
/// The connection is driven by a task on the runtime that connected: use the client on that
/// runtime (once it is dropped, every query fails with "connection closed").
pub struct Client {
    inner: tokio_postgres::Client,
    connection: Option<tokio::task::JoinHandle<()>>,
    server: String,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("server", &self.server).finish_non_exhaustive()
    }
}

impl Client {
    /// Wrap a fresh connection; its task runs on the current runtime until the client is gone.
    pub(super) fn new<S, T>(
        inner: tokio_postgres::Client,
        connection: tokio_postgres::Connection<S, T>,
        server: &str,
    ) -> Client
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
        T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let name = server.to_string();
        let task = tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!("PostgreSQL {name}: connection ended: {e}");
            }
        });
        Client { inner, connection: Some(task), server: server.to_string() }
    }

    /// `host:port` of the server.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// The tokio-postgres client, for what the helpers do not cover (transactions, COPY).
    pub fn raw(&self) -> &tokio_postgres::Client {
        &self.inner
    }

    /// True once the connection is gone (the server closed it or it failed).
    pub fn is_closed(&self) -> bool {
        self.inner.is_closed()
    }

    fn fail(&self, what: &str, e: tokio_postgres::Error) -> anyhow::Error {
        Error::new(&self.server, Failure::Query, what.to_string(), Some(e)).into_anyhow()
    }

    /// Every row of a query.
    pub async fn query<T>(&self, sql: &T, params: &[&(dyn ToSql + Sync)]) -> anyhow::Result<Vec<Row>>
    where
        T: ?Sized + ToStatement,
    {
        self.inner.query(sql, params).await.map_err(|e| self.fail("query failed", e))
    }

    /// The one row of a query; none or several is an error.
    pub async fn query_one<T>(&self, sql: &T, params: &[&(dyn ToSql + Sync)]) -> anyhow::Result<Row>
    where
        T: ?Sized + ToStatement,
    {
        self.inner.query_one(sql, params).await.map_err(|e| self.fail("query failed", e))
    }

    /// The row of a query that returns at most one; several is an error.
    pub async fn query_opt<T>(&self, sql: &T, params: &[&(dyn ToSql + Sync)]) -> anyhow::Result<Option<Row>>
    where
        T: ?Sized + ToStatement,
    {
        self.inner.query_opt(sql, params).await.map_err(|e| self.fail("query failed", e))
    }

    /// The first column of the one row of a query, typed: `query_value::<bool>("SELECT
    /// pg_is_in_recovery()", &[])`. A NULL needs an `Option<_>` type.
    pub async fn query_value<V, T>(&self, sql: &T, params: &[&(dyn ToSql + Sync)]) -> anyhow::Result<V>
    where
        V: FromSqlOwned,
        T: ?Sized + ToStatement,
    {
        let row = self.query_one(sql, params).await?;
        row.try_get(0).map_err(|e| self.fail("unexpected answer", e))
    }

    /// Run one statement; the number of rows it changed.
    pub async fn execute<T>(&self, sql: &T, params: &[&(dyn ToSql + Sync)]) -> anyhow::Result<u64>
    where
        T: ?Sized + ToStatement,
    {
        self.inner.execute(sql, params).await.map_err(|e| self.fail("statement failed", e))
    }

    /// Run statements without parameters, separated by `;` (schema, `BEGIN`, `COMMIT`).
    pub async fn batch_execute(&self, sql: &str) -> anyhow::Result<()> {
        self.inner.batch_execute(sql).await.map_err(|e| self.fail("statement failed", e))
    }

    /// Prepare a statement to run many times.
    pub async fn prepare(&self, sql: &str) -> anyhow::Result<Statement> {
        self.inner.prepare(sql).await.map_err(|e| self.fail("preparing a statement failed", e))
    }

    /// Close the connection politely (the server sees a Terminate, not a dropped socket).
    pub async fn close(mut self) {
        let task = self.connection.take();
        drop(self.inner);
        if let Some(task) = task {
            let _ = tokio::time::timeout(Duration::from_secs(2), task).await;
        }
    }
}
