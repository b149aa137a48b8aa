//! Runs an axum router on its own thread with its own tokio runtime, for the sync API.

use std::future::IntoFuture;
use std::net::TcpListener;
use std::thread::JoinHandle;

use anyhow::Context;

/// An axum server on a background thread. Dropping it (or [`InProcessServer::shutdown`])
/// closes the listening socket and every open connection at once, then joins the thread.
pub(crate) struct InProcessServer {
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl InProcessServer {
    /// Serves `router` on an already bound listener.
    pub(crate) fn start(name: &str, listener: TcpListener, router: axum::Router) -> anyhow::Result<InProcessServer> {
        listener.set_nonblocking(true).context("listener set_nonblocking")?;
        Self::spawn(name, router, move || tokio::net::TcpListener::from_std(listener))
    }

    /// Serves `router` on an already bound unix-domain listener.
    pub(crate) fn start_unix(
        name: &str,
        listener: std::os::unix::net::UnixListener,
        router: axum::Router,
    ) -> anyhow::Result<InProcessServer> {
        listener.set_nonblocking(true).context("listener set_nonblocking")?;
        Self::spawn(name, router, move || tokio::net::UnixListener::from_std(listener))
    }

    fn spawn<L: axum::serve::Listener>(
        name: &str,
        router: axum::Router,
        listener: impl FnOnce() -> std::io::Result<L> + Send + 'static,
    ) -> anyhow::Result<InProcessServer>
    where
        L::Addr: std::fmt::Debug,
    {
        let runtime =
            tokio::runtime::Builder::new_current_thread().enable_all().build().context("build a tokio runtime")?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<std::io::Result<()>>();
        let thread = std::thread::Builder::new()
            .name(format!("standby-e2e-{name}"))
            .spawn(move || {
                runtime.block_on(async move {
                    let listener = match listener() {
                        Ok(l) => {
                            let _ = ready_tx.send(Ok(()));
                            l
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return;
                        }
                    };
                    let serve = axum::serve(listener, router).into_future();
                    tokio::select! {
                        _ = serve => {}
                        _ = rx => {}
                    }
                });
                // Dropping the runtime cancels the connection tasks: sockets close now.
                drop(runtime);
            })
            .context("spawn the server thread")?;
        let server = InProcessServer { shutdown: Some(tx), thread: Some(thread) };
        ready_rx.recv().context("server thread died")?.context("register the listener with tokio")?;
        Ok(server)
    }

    /// Stops serving; returns when the port is closed.
    pub(crate) fn shutdown(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for InProcessServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}
