//! A small HTTP app backend (axum) that nginx proxies to and monitors probe.

use std::net::TcpListener;
use std::path::{Path as FsPath, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::Router;
use serde::Deserialize;
use serde_json::json;

use crate::serve::InProcessServer;

struct Shared {
    name: String,
    body: Mutex<String>,
    /// How long `/` waits before it answers, in milliseconds.
    body_delay_ms: AtomicU64,
    healthy: AtomicBool,
    hits: AtomicU64,
    /// `/slow` and `/gate` requests being answered now, and the most there were at once.
    in_flight: AtomicU64,
    max_in_flight: AtomicU64,
}

/// Counts a request in flight while it lives.
struct InFlight<'a>(&'a Shared);

impl<'a> InFlight<'a> {
    fn new(s: &'a Shared) -> InFlight<'a> {
        let now = s.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        s.max_in_flight.fetch_max(now, Ordering::SeqCst);
        InFlight(s)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Shared {
    fn hit(&self) -> u64 {
        self.hits.fetch_add(1, Ordering::SeqCst) + 1
    }
}

/// An app on 127.0.0.1:`port`, served from its own thread. Every response carries
/// `X-Backend: <name>`. Routes:
///
/// - `/` — the body text (default `hello from <name>`), after the delay set with
///   [`AppBackend::set_body_delay`]
/// - `/health` — 200 `ok`, or 503 `unhealthy` after `set_healthy(false)`
/// - `/json` — `{"name": <name>, "status": "ok", "count": <hits>}`
/// - `/slow?ms=N` — sleeps N ms, then 200 `slow ok`
/// - `/gate?n=N` — 200 once N `/slow`/`/gate` requests were in flight at once, 503 after 30 s
/// - `/status/{code}` — answers with that status code
/// - `/echo` (any method) — JSON of what came: `method`, `path`, `query` (raw), `headers`
///   (names lowercase, values joined by `, `), `body` (as text, invalid UTF-8 replaced)
/// - `/cookie/set?name=N&value=V[&to=PATH][&attrs=A]` (any method) — `Set-Cookie: N=V; Path=/[; A]`,
///   then 200 `set`, or a 302 to PATH when `to` is given
/// - `/cookie/clear?name=N` (any method) — `Set-Cookie: N=; Max-Age=0; Path=/`
/// - `/redirect/{n}` — 302 to `/redirect/{n-1}`, and 200 `arrived` at 0
///
/// With [`AppBackend::listen_unix`] it also serves the same routes on a unix socket (the
/// blue/green switch without a reload: nginx proxies to a symlink to one colour's socket).
///
/// Dropping it stops the server.
pub struct AppBackend {
    /// The port, kept across [`AppBackend::stop`] / [`AppBackend::start_again`].
    pub port: u16,
    shared: Arc<Shared>,
    server: Option<InProcessServer>,
    /// The unix socket path, kept across restarts, and its server while it runs.
    unix: Option<PathBuf>,
    unix_server: Option<InProcessServer>,
}

impl AppBackend {
    /// Starts the app on a free port.
    pub fn start(name: &str) -> anyhow::Result<AppBackend> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).context("bind 127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let shared = Arc::new(Shared {
            name: name.to_string(),
            body: Mutex::new(format!("hello from {name}")),
            body_delay_ms: AtomicU64::new(0),
            healthy: AtomicBool::new(true),
            hits: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            max_in_flight: AtomicU64::new(0),
        });
        let mut app = AppBackend { port, shared, server: None, unix: None, unix_server: None };
        app.serve(listener)?;
        Ok(app)
    }

    fn router(&self) -> Router {
        Router::new()
            .route("/", get(root))
            .route("/health", get(health))
            .route("/json", get(json_status))
            .route("/slow", get(slow))
            .route("/gate", get(gate))
            .route("/status/{code}", get(status))
            .route("/echo", any(echo))
            .route("/cookie/set", any(cookie_set))
            .route("/cookie/clear", any(cookie_clear))
            .route("/redirect/{n}", get(redirect_n))
            .fallback(not_found)
            .with_state(self.shared.clone())
    }

    fn serve(&mut self, listener: TcpListener) -> anyhow::Result<()> {
        let name = format!("app-{}", self.shared.name);
        self.server = Some(InProcessServer::start(&name, listener, self.router())?);
        if let Some(path) = self.unix.clone() {
            self.serve_unix(&path)?;
        }
        Ok(())
    }

    /// Binds `path` afresh (a stale socket file is removed first) with a large backlog.
    fn serve_unix(&mut self, path: &FsPath) -> anyhow::Result<()> {
        match std::fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => bail!("cannot remove the stale socket {}: {e}", path.display()),
        }
        let listener = bind_unix(path)?;
        let name = format!("app-{}-unix", self.shared.name);
        self.unix_server = Some(InProcessServer::start_unix(&name, listener, self.router())?);
        Ok(())
    }

    /// Also serve on the unix socket `path` from now on, and after every
    /// [`AppBackend::start_again`] (served only while the TCP port is).
    pub fn listen_unix(&mut self, path: &FsPath) -> anyhow::Result<()> {
        self.unix = Some(path.to_path_buf());
        if self.server.is_some() {
            self.serve_unix(path)?;
        }
        Ok(())
    }

    /// The unix socket given to [`AppBackend::listen_unix`].
    pub fn unix_path(&self) -> Option<&FsPath> {
        self.unix.as_deref()
    }

    /// The name given to [`AppBackend::start`].
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// `http://127.0.0.1:PORT<path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// What `/health` answers from now on.
    pub fn set_healthy(&self, healthy: bool) {
        self.shared.healthy.store(healthy, Ordering::SeqCst);
    }

    /// What `/` answers from now on.
    pub fn set_body(&self, body: &str) {
        let mut guard = self.shared.body.lock().unwrap_or_else(|poison| poison.into_inner());
        *guard = body.to_string();
    }

    /// How long `/` waits before it answers from now on (zero: at once).
    pub fn set_body_delay(&self, delay: Duration) {
        let ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self.shared.body_delay_ms.store(ms, Ordering::SeqCst);
    }

    /// Requests served so far (all routes, across restarts).
    pub fn hits(&self) -> u64 {
        self.shared.hits.load(Ordering::SeqCst)
    }

    /// The most `/slow` and `/gate` requests that were answered at once, since the start or
    /// the last call (which resets it).
    pub fn take_max_in_flight(&self) -> u64 {
        self.shared.max_in_flight.swap(0, Ordering::SeqCst)
    }

    /// True while it serves.
    pub fn is_running(&self) -> bool {
        self.server.is_some()
    }

    /// Closes the port and every open connection; connections are refused until
    /// [`AppBackend::start_again`].
    pub fn stop(&mut self) {
        if let Some(mut server) = self.unix_server.take() {
            server.shutdown();
        }
        if let Some(path) = &self.unix {
            let _ = std::fs::remove_file(path);
        }
        if let Some(mut server) = self.server.take() {
            server.shutdown();
        }
    }

    /// Serves again on the same port (no-op while running).
    pub fn start_again(&mut self) -> anyhow::Result<()> {
        if self.server.is_some() {
            return Ok(());
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        let listener = loop {
            match TcpListener::bind(("127.0.0.1", self.port)) {
                Ok(listener) => break listener,
                Err(e) if Instant::now() < deadline => {
                    tracing::debug!("rebind 127.0.0.1:{}: {e}", self.port);
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => bail!("cannot bind 127.0.0.1:{} again: {e}", self.port),
            }
        };
        self.serve(listener)
    }
}

impl Drop for AppBackend {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A unix listener. std listens with a backlog of -1 on Linux (the kernel's somaxconn, 4096
/// here): a burst of connects from nginx must not meet EAGAIN, which nginx turns into 502.
fn bind_unix(path: &FsPath) -> anyhow::Result<std::os::unix::net::UnixListener> {
    std::os::unix::net::UnixListener::bind(path).with_context(|| format!("bind {}", path.display()))
}

type AppState = State<Arc<Shared>>;

fn reply(shared: &Shared, status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    if let Ok(value) = HeaderValue::from_str(&shared.name) {
        response.headers_mut().insert("x-backend", value);
    }
    response
}

async fn root(State(s): AppState) -> Response {
    s.hit();
    let delay = s.body_delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    let body = s.body.lock().map(|b| b.clone()).unwrap_or_else(|poison| poison.into_inner().clone());
    reply(&s, StatusCode::OK, body)
}

async fn health(State(s): AppState) -> Response {
    s.hit();
    if s.healthy.load(Ordering::SeqCst) {
        reply(&s, StatusCode::OK, "ok".into())
    } else {
        reply(&s, StatusCode::SERVICE_UNAVAILABLE, "unhealthy".into())
    }
}

async fn json_status(State(s): AppState) -> Response {
    let count = s.hit();
    let body = json!({ "name": s.name, "status": "ok", "count": count }).to_string();
    let mut response = reply(&s, StatusCode::OK, body);
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

#[derive(Deserialize)]
struct SlowQuery {
    ms: Option<u64>,
}

async fn slow(State(s): AppState, Query(q): Query<SlowQuery>) -> Response {
    s.hit();
    let _in_flight = InFlight::new(&s);
    tokio::time::sleep(Duration::from_millis(q.ms.unwrap_or(1000))).await;
    reply(&s, StatusCode::OK, "slow ok".into())
}

#[derive(Deserialize)]
struct GateQuery {
    n: u64,
}

/// Answers once `n` gate requests are in flight at the same time (200), or after 30 s
/// without that (503): proof that a client sends them concurrently, without timing it.
async fn gate(State(s): AppState, Query(q): Query<GateQuery>) -> Response {
    s.hit();
    let _in_flight = InFlight::new(&s);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while s.max_in_flight.load(Ordering::SeqCst) < q.n {
        if tokio::time::Instant::now() >= deadline {
            return reply(&s, StatusCode::SERVICE_UNAVAILABLE, format!("fewer than {} at once", q.n));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    reply(&s, StatusCode::OK, "gate ok".into())
}

async fn status(State(s): AppState, Path(code): Path<u16>) -> Response {
    s.hit();
    match StatusCode::from_u16(code) {
        Ok(code) => reply(&s, code, format!("status {}", code.as_u16())),
        Err(_) => reply(&s, StatusCode::BAD_REQUEST, format!("bad status {code}")),
    }
}

async fn not_found(State(s): AppState) -> Response {
    s.hit();
    reply(&s, StatusCode::NOT_FOUND, "not found".into())
}

async fn echo(
    State(s): AppState,
    method: axum::http::Method,
    uri: axum::http::Uri,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    s.hit();
    let mut map = serde_json::Map::new();
    for name in headers.keys() {
        let values: Vec<String> =
            headers.get_all(name).iter().map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()).collect();
        map.insert(name.as_str().to_string(), json!(values.join(", ")));
    }
    let body = json!({
        "method": method.as_str(),
        "path": uri.path(),
        "query": uri.query().unwrap_or(""),
        "headers": map,
        "body": String::from_utf8_lossy(&body),
    });
    let mut response = reply(&s, StatusCode::OK, body.to_string());
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

#[derive(Deserialize)]
struct CookieQuery {
    name: String,
    value: Option<String>,
    to: Option<String>,
    /// Attributes after `Path=/`, as they go in the header (`HttpOnly; SameSite=Lax`).
    attrs: Option<String>,
}

async fn cookie_set(State(s): AppState, Query(q): Query<CookieQuery>) -> Response {
    s.hit();
    let mut cookie = format!("{}={}; Path=/", q.name, q.value.unwrap_or_default());
    if let Some(attrs) = q.attrs.filter(|a| !a.is_empty()) {
        cookie.push_str("; ");
        cookie.push_str(&attrs);
    }
    let mut response = match &q.to {
        Some(to) => {
            let mut r = reply(&s, StatusCode::FOUND, "moved".into());
            if let Ok(v) = HeaderValue::from_str(to) {
                r.headers_mut().insert(header::LOCATION, v);
            }
            r
        }
        None => reply(&s, StatusCode::OK, "set".into()),
    };
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    response
}

async fn cookie_clear(State(s): AppState, Query(q): Query<CookieQuery>) -> Response {
    s.hit();
    let mut response = reply(&s, StatusCode::OK, "cleared".into());
    if let Ok(v) = HeaderValue::from_str(&format!("{}=; Max-Age=0; Path=/", q.name)) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    response
}

async fn redirect_n(State(s): AppState, Path(n): Path<u32>) -> Response {
    s.hit();
    if n == 0 {
        return reply(&s, StatusCode::OK, "arrived".into());
    }
    let mut response = reply(&s, StatusCode::FOUND, "moved".into());
    if let Ok(v) = HeaderValue::from_str(&format!("/redirect/{}", n - 1)) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    response
}
