//! The PostgreSQL client for sync code: an async [`Client`] on a private current-thread
//! runtime, each call run to completion.
//!
//! Where it may be called from:
//! - a thread with no tokio runtime (a plain `main`, a `std::thread`): the call runs on the
//!   calling thread, as the `postgres` crate does;
//! - a thread inside a multi-thread runtime's context (`spawn_blocking`, an async task): the
//!   call runs in `tokio::task::block_in_place`, on the calling thread;
//! - a thread inside a current-thread runtime's context: the call runs on a short-lived
//!   helper thread and the caller waits for it.
//!
//! It never panics (a runtime cannot `block_on` inside another, which is why the last two
//! cases exist), but from an async task it blocks that task for the call's duration: prefer
//! the async [`Client`] there, or `spawn_blocking`.

use tokio::runtime::Runtime;
use tokio_postgres::types::{FromSqlOwned, ToSql};
use tokio_postgres::{Row, Statement, ToStatement};

use super::{Client, ConnectOptions};

/// A connected client with blocking calls; the same helpers and errors as [`Client`].
pub struct BlockingClient {
    client: Option<Client>,
    runtime: Option<Runtime>,
}

impl std::fmt::Debug for BlockingClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockingClient").field("client", &self.client).finish_non_exhaustive()
    }
}

/// Run `work` to completion on `runtime`, from whatever thread calls (see the module docs).
fn run<F>(runtime: &Runtime, work: F) -> F::Output
where
    F: std::future::Future + Send,
    F::Output: Send,
{
    let Ok(outer) = tokio::runtime::Handle::try_current() else {
        return runtime.block_on(work);
    };
    if outer.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread {
        // Leaves the outer runtime's context (handing this worker's tasks to another) for the call.
        return tokio::task::block_in_place(|| runtime.block_on(work));
    }
    std::thread::scope(|s| match s.spawn(|| runtime.block_on(work)).join() {
        Ok(out) => out,
        Err(panic) => std::panic::resume_unwind(panic),
    })
}

impl BlockingClient {
    pub(super) fn connect(options: &ConnectOptions) -> anyhow::Result<BlockingClient> {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        match run(&runtime, options.connect()) {
            Ok(client) => Ok(BlockingClient { client: Some(client), runtime: Some(runtime) }),
            Err(e) => {
                dispose(runtime);
                Err(e)
            }
        }
    }

    fn parts(&self) -> (&Runtime, &Client) {
        match (&self.runtime, &self.client) {
            (Some(r), Some(c)) => (r, c),
            // Both are taken only in drop.
            _ => unreachable!("a BlockingClient is used after drop"),
        }
    }

    /// `host:port` of the server.
    pub fn server(&self) -> &str {
        self.parts().1.server()
    }

    /// True once the connection is gone.
    pub fn is_closed(&self) -> bool {
        self.parts().1.is_closed()
    }

    /// Every row of a query.
    pub fn query<T>(&self, sql: &T, params: &[&(dyn ToSql + Sync)]) -> anyhow::Result<Vec<Row>>
    where
        T: ?Sized + ToStatement + Sync,
    {
        let (rt, c) = self.parts();
        run(rt, c.query(sql, params))
    }

    /// The one row of a query; none or several is an error.
    pub fn query_one<T>(&self, sql: &T, params: &[&(dyn ToSql + Sync)]) -> anyhow::Result<Row>
    where
        T: ?Sized + ToStatement + Sync,
    {
        let (rt, c) = self.parts();
        run(rt, c.query_one(sql, params))
    }

    /// The row of a query that returns at most one.
    pub fn query_opt<T>(&self, sql: &T, params: &[&(dyn ToSql + Sync)]) -> anyhow::Result<Option<Row>>
    where
        T: ?Sized + ToStatement + Sync,
    {
        let (rt, c) = self.parts();
        run(rt, c.query_opt(sql, params))
    }

    /// The first column of the one row of a query, typed.
    pub fn query_value<V, T>(&self, sql: &T, params: &[&(dyn ToSql + Sync)]) -> anyhow::Result<V>
    where
        V: FromSqlOwned + Send,
        T: ?Sized + ToStatement + Sync,
    {
        let (rt, c) = self.parts();
        run(rt, c.query_value(sql, params))
    }

    /// Run one statement; the number of rows it changed.
    pub fn execute<T>(&self, sql: &T, params: &[&(dyn ToSql + Sync)]) -> anyhow::Result<u64>
    where
        T: ?Sized + ToStatement + Sync,
    {
        let (rt, c) = self.parts();
        run(rt, c.execute(sql, params))
    }

    /// Run statements without parameters, separated by `;`.
    pub fn batch_execute(&self, sql: &str) -> anyhow::Result<()> {
        let (rt, c) = self.parts();
        run(rt, c.batch_execute(sql))
    }

    /// Prepare a statement to run many times.
    pub fn prepare(&self, sql: &str) -> anyhow::Result<Statement> {
        let (rt, c) = self.parts();
        run(rt, c.prepare(sql))
    }
}

impl Drop for BlockingClient {
    fn drop(&mut self) {
        let (Some(client), Some(runtime)) = (self.client.take(), self.runtime.take()) else {
            return;
        };
        run(&runtime, client.close());
        dispose(runtime);
    }
}

/// Drop a private runtime, from whatever thread: dropping one inside another runtime's
/// context would panic, so there it is shut down without waiting.
fn dispose(runtime: Runtime) {
    if tokio::runtime::Handle::try_current().is_ok() {
        runtime.shutdown_background();
    }
}
