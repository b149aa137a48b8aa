//! What a daemon (`watch`) needs besides its work: a clean stop on SIGTERM or SIGINT (or
//! after a set time, for tests and benchmarks), and a tiny HTTP endpoint that serves
//! Prometheus metrics on `GET /metrics` (and a tool's own routes beside it, [`serve`]).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::exit::{self, Code};

/// Resolves on SIGTERM, SIGINT, or after `stop_after`.
pub async fn shutdown(stop_after: Option<Duration>) {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    let timer = async {
        match stop_after {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = term.recv() => {},
        _ = tokio::signal::ctrl_c() => {},
        _ = timer => {},
    }
}

/// Listen for `--metrics-listen ADDR` (a bad or busy address is a usage error).
pub async fn bind_metrics(addr: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| exit::error(Code::Usage, format!("--metrics-listen {addr}: {e}")))?;
    tracing::info!("metrics on http://{addr}/metrics");
    Ok(listener)
}

/// A request to the daemon's listener other than `GET /metrics`.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    /// At most [`MAX_REQUEST_BODY`] bytes of the body (per `Content-Length`).
    pub body: Vec<u8>,
}

/// The answer to a [`Request`]: a status line such as `"200 OK"` and a text body.
pub type Answer = (&'static str, String);

/// Extra routes beside `/metrics` (a tool's own, e.g. downtime-monitor's `POST /ping/NAME`):
/// `None` answers 404.
pub type Handler =
    Arc<dyn Fn(Request) -> std::pin::Pin<Box<dyn std::future::Future<Output = Option<Answer>> + Send>> + Send + Sync>;

/// The largest request body the listener reads.
pub const MAX_REQUEST_BODY: usize = 4096;

/// Serve `render()` as Prometheus text on `GET /metrics`, 404 elsewhere, one request a
/// connection; a client that sends nothing for 5 s is dropped.
pub async fn serve_metrics(listener: tokio::net::TcpListener, render: Arc<dyn Fn() -> String + Send + Sync>) {
    serve(listener, render, None).await
}

/// [`serve_metrics`], with `routes` answering every other request.
pub async fn serve(
    listener: tokio::net::TcpListener,
    render: Arc<dyn Fn() -> String + Send + Sync>,
    routes: Option<Handler>,
) {
    loop {
        let Ok((mut conn, _)) = listener.accept().await else {
            continue;
        };
        let (render, routes) = (render.clone(), routes.clone());
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096 + MAX_REQUEST_BODY];
            let mut len = 0;
            let read = async {
                let mut want: Option<usize> = None;
                while len < buf.len() {
                    match conn.read(&mut buf[len..]).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => len += n,
                    }
                    if want.is_none() {
                        if let Some(end) = buf[..len].windows(4).position(|w| w == b"\r\n\r\n") {
                            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                            let body_len = head
                                .lines()
                                .find_map(|l| l.strip_prefix("content-length:"))
                                .and_then(|v| v.trim().parse::<usize>().ok())
                                .unwrap_or(0);
                            want = Some(end + 4 + body_len.min(MAX_REQUEST_BODY));
                        }
                    }
                    if want.is_some_and(|w| len >= w) {
                        break;
                    }
                }
            };
            if tokio::time::timeout(Duration::from_secs(5), read).await.is_err() {
                return;
            }
            let request = String::from_utf8_lossy(&buf[..len]).into_owned();
            let mut words = request.split_whitespace();
            let (method, path) = (words.next().unwrap_or("").to_string(), words.next().unwrap_or("").to_string());
            let (status, body) = if path == "/metrics" {
                ("200 OK", render())
            } else {
                let answer = match routes {
                    Some(routes) => {
                        let body_at = buf[..len].windows(4).position(|w| w == b"\r\n\r\n").map_or(len, |p| p + 4);
                        let body = buf[body_at..len].iter().copied().take(MAX_REQUEST_BODY).collect();
                        routes(Request { method, path, body }).await
                    }
                    None => None,
                };
                answer.unwrap_or(("404 Not Found", "not found: try /metrics\n".to_string()))
            };
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = conn.write_all(head.as_bytes()).await;
            let _ = conn.write_all(body.as_bytes()).await;
        });
    }
}
