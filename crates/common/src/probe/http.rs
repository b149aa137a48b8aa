//! HTTP(S) probes: a client built with the operator's TLS choices (system + webpki roots by
//! default, an extra CA file, or — only when asked — no verification) and an optional pin of
//! the URL's host name to an IP, so an origin behind DNS or a CDN can be checked directly
//! (curl's `--resolve`). [`fetch`] returns the raw answer with a bounded body; [`HttpCheck`]
//! adds the common expectations (status set, body substring or regex, max latency).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use regex::Regex;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use super::{error_chain, Failure, ProbeResult, StatusSet};

/// How much of a body a probe reads at most; the rest is not downloaded.
pub const DEFAULT_MAX_BODY: usize = 1024 * 1024;

/// TLS choices. Verification is on unless `insecure` is set.
#[derive(Debug, Clone, Default)]
pub struct TlsOptions {
    /// An extra PEM CA bundle to trust (a private CA, a self-signed origin).
    pub ca_file: Option<PathBuf>,
    /// Accept any certificate. Never the default; logged as a warning when used.
    pub insecure: bool,
}

/// Settings of an HTTP client shared by many requests.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    pub tls: TlsOptions,
    /// Whole-request timeout (connect, send, headers, body).
    pub timeout: Duration,
    /// Follow up to 10 redirects (a loop fails as a protocol error), or none.
    pub follow_redirects: bool,
    /// Pin host names to IPs: requests to that host connect to the IP (URL's port kept),
    /// with SNI, certificate checks and the Host header still using the name.
    pub resolve: Vec<(String, IpAddr)>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            tls: TlsOptions::default(),
            timeout: Duration::from_secs(10),
            follow_redirects: false,
            resolve: Vec::new(),
        }
    }
}

/// Build a client. A CA file that cannot be read or parsed is a usage error (exit 2).
pub fn client(opts: &ClientOptions) -> anyhow::Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .timeout(opts.timeout)
        .connect_timeout(opts.timeout)
        .user_agent(concat!("standby/", env!("CARGO_PKG_VERSION")))
        .redirect(if opts.follow_redirects {
            reqwest::redirect::Policy::limited(10)
        } else {
            reqwest::redirect::Policy::none()
        })
        .tls_info(true);
    if opts.tls.insecure {
        tracing::warn!("TLS certificate verification is off (--insecure)");
        builder = builder.danger_accept_invalid_certs(true);
    } else {
        // Web PKI roots + the CA file, a CA file certificate that is the server's own
        // accepted (pinning), and a clear message for an untrusted self-signed one.
        builder = builder.use_preconfigured_tls(super::tls::client_config(opts.tls.ca_file.as_deref())?);
    }
    for (host, ip) in &opts.resolve {
        builder = builder.resolve(host, SocketAddr::new(*ip, 0));
    }
    builder.build().context("cannot build the HTTP client")
}

/// One request to send.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: reqwest::Method,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
}

impl Request {
    pub fn get(url: impl Into<String>) -> Self {
        Request { method: reqwest::Method::GET, url: url.into(), headers: Vec::new(), body: None }
    }
}

/// An answer, with at most `max_body` bytes of its body.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    /// The body was longer than the limit and was cut.
    pub truncated: bool,
    pub latency: Duration,
    /// The URL that answered (after redirects).
    pub final_url: String,
    /// The server's leaf certificate (DER), for HTTPS.
    pub peer_certificate: Option<Vec<u8>>,
}

impl HttpResponse {
    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A failed request: why, what, and after how long.
#[derive(Debug, Clone)]
pub struct FetchError {
    pub failure: Failure,
    pub message: String,
    pub latency: Duration,
}

/// Send one request; never hangs past `timeout` (whole request) and never reads more than
/// `max_body` bytes of body.
pub async fn fetch(
    client: &reqwest::Client,
    req: &Request,
    timeout: Duration,
    max_body: usize,
) -> Result<HttpResponse, FetchError> {
    let start = Instant::now();
    let fail = |failure, message: String| FetchError { failure, message, latency: start.elapsed() };
    let mut headers = HeaderMap::new();
    for (k, v) in &req.headers {
        let name = HeaderName::from_bytes(k.as_bytes())
            .map_err(|_| fail(Failure::Protocol, format!("invalid header name {k:?}")))?;
        let value =
            HeaderValue::from_str(v).map_err(|_| fail(Failure::Protocol, format!("invalid value for header {k}")))?;
        headers.append(name, value);
    }
    let mut builder = client.request(req.method.clone(), &req.url).headers(headers).timeout(timeout);
    if let Some(body) = &req.body {
        builder = builder.body(body.clone());
    }
    let work = async {
        let mut resp = builder.send().await.map_err(|e| classify(&e))?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let final_url = resp.url().to_string();
        let peer_certificate =
            resp.extensions().get::<reqwest::tls::TlsInfo>().and_then(|i| i.peer_certificate().map(<[u8]>::to_vec));
        let mut body = Vec::new();
        let mut truncated = false;
        while let Some(chunk) = resp.chunk().await.map_err(|e| classify(&e))? {
            let room = max_body.saturating_sub(body.len());
            if chunk.len() > room {
                body.extend_from_slice(&chunk[..room]);
                truncated = true;
                break;
            }
            body.extend_from_slice(&chunk);
        }
        Ok::<_, (Failure, String)>((status, headers, body, truncated, final_url, peer_certificate))
    };
    match tokio::time::timeout(timeout.saturating_add(Duration::from_millis(50)), work).await {
        Err(_) => Err(fail(Failure::Timeout, format!("no complete answer within {timeout:?}"))),
        Ok(Err((failure, message))) => Err(fail(failure, message)),
        Ok(Ok((status, headers, body, truncated, final_url, peer_certificate))) => {
            Ok(HttpResponse { status, headers, body, truncated, latency: start.elapsed(), final_url, peer_certificate })
        }
    }
}

/// Sort a reqwest error into a [`Failure`] with its whole message chain.
fn classify(e: &reqwest::Error) -> (Failure, String) {
    // reqwest's message holds the URL, with its password and tokens: never print those.
    let mut text = crate::secret::redact(&error_chain(e));
    // Look for TLS words in the causes only: reqwest's own message holds the URL.
    let causes = std::error::Error::source(e).map(error_chain).unwrap_or_default().to_lowercase();
    let failure = if e.is_timeout() {
        Failure::Timeout
    } else if causes.contains("corrupt message") || causes.contains("invalidcontenttype") {
        // https:// to a plain-HTTP port: something answered, in another protocol.
        text.push_str(" (the server does not speak TLS on this port: is it plain http://?)");
        Failure::Protocol
    } else if causes.contains("certificate") || causes.contains("tls") || causes.contains("handshake") {
        Failure::Tls
    } else if e.is_connect() && !e.is_redirect() {
        Failure::Unreachable
    } else {
        // Redirect loops, malformed answers, bodies cut off mid-way.
        Failure::Protocol
    };
    (failure, text)
}

/// A ready-made HTTP health check (used by monitors, failover and deploy health gates).
#[derive(Debug, Clone)]
pub struct HttpCheck {
    pub request: Request,
    pub client: ClientOptions,
    pub expect_status: StatusSet,
    pub body_contains: Option<String>,
    pub body_regex: Option<Regex>,
    pub max_latency: Option<Duration>,
}

impl HttpCheck {
    /// GET `url`, expecting any 2xx within 10 s.
    pub fn new(url: impl Into<String>) -> Self {
        HttpCheck {
            request: Request::get(url),
            client: ClientOptions::default(),
            expect_status: StatusSet::success(),
            body_contains: None,
            body_regex: None,
            max_latency: None,
        }
    }

    /// Run with a fresh client (a bad CA file is reported as a failed probe).
    pub async fn run(&self) -> ProbeResult {
        match client(&self.client) {
            Ok(c) => self.run_with(&c).await,
            Err(e) => ProbeResult::fail(Duration::ZERO, Failure::Tls, format!("{e:#}")),
        }
    }

    /// Run with a shared client (its options must match `self.client`).
    pub async fn run_with(&self, client: &reqwest::Client) -> ProbeResult {
        self.judge(fetch(client, &self.request, self.client.timeout, DEFAULT_MAX_BODY).await)
    }

    /// Run with a shared [`LeanClient`](super::lean::LeanClient): for checks with the default
    /// client options whose request [`can_send`](super::lean::LeanClient::can_send) takes.
    pub async fn run_lean(&self, client: &super::lean::LeanClient) -> ProbeResult {
        self.judge(client.fetch(&self.request, self.client.timeout, DEFAULT_MAX_BODY).await)
    }

    /// Whether [`HttpCheck::run_lean`] can run this check.
    pub fn lean(&self) -> bool {
        self.client.resolve.is_empty()
            && self.client.tls.ca_file.is_none()
            && !self.client.tls.insecure
            && !self.client.follow_redirects
            && super::lean::LeanClient::can_send(&self.request)
    }

    fn judge(&self, fetched: Result<HttpResponse, FetchError>) -> ProbeResult {
        let resp = match fetched {
            Ok(r) => r,
            Err(e) => return ProbeResult::fail(e.latency, e.failure, e.message),
        };
        let mut result = match self.unmet(&resp) {
            None => ProbeResult::pass(resp.latency),
            Some(why) => ProbeResult::fail(resp.latency, Failure::Unexpected, why),
        };
        result.status = Some(resp.status);
        result
    }

    /// The first expectation the answer does not meet, said as "expected X, got Y".
    pub fn unmet(&self, resp: &HttpResponse) -> Option<String> {
        if !self.expect_status.contains(resp.status) {
            return Some(format!(
                "expected status {}, got {}; body: {}",
                self.expect_status,
                resp.status,
                excerpt(&resp.body, 200)
            ));
        }
        let text = || resp.text();
        if let Some(needle) = &self.body_contains {
            if !text().contains(needle.as_str()) {
                return Some(format!("expected body to contain {needle:?}; body: {}", excerpt(&resp.body, 200)));
            }
        }
        if let Some(re) = &self.body_regex {
            if !re.is_match(&text()) {
                return Some(format!("expected body to match /{re}/; body: {}", excerpt(&resp.body, 200)));
            }
        }
        if let Some(max) = self.max_latency {
            if resp.latency > max {
                return Some(format!("expected latency <= {max:?}, took {:?}", resp.latency));
            }
        }
        None
    }
}

/// A bounded, printable excerpt of a body: at most `max_chars` characters, control
/// characters escaped, `(N bytes, not UTF-8)` for binary bodies.
pub fn excerpt(body: &[u8], max_chars: usize) -> String {
    let text = match std::str::from_utf8(body) {
        Ok(t) => t,
        Err(_) => return format!("({} bytes, not UTF-8)", body.len()),
    };
    let mut out: String = text.chars().take(max_chars).flat_map(char::escape_debug).collect();
    if text.chars().nth(max_chars).is_some() {
        out.push_str(&format!("… ({} bytes in all)", body.len()));
    }
    if out.is_empty() {
        out.push_str("(empty)");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exit::Code;

    #[test]
    fn excerpt_is_bounded_and_safe() {
        assert_eq!(excerpt(b"", 10), "(empty)");
        assert_eq!(excerpt(b"ok\n", 10), "ok\\n");
        assert_eq!(excerpt(&[0xff, 0xfe], 10), "(2 bytes, not UTF-8)");
        let long = "x".repeat(1000);
        let e = excerpt(long.as_bytes(), 5);
        assert_eq!(e, "xxxxx… (1000 bytes in all)");
    }

    #[test]
    fn unreadable_ca_file_is_a_usage_error() {
        let opts = ClientOptions {
            tls: TlsOptions { ca_file: Some("/nonexistent/ca.pem".into()), insecure: false },
            ..ClientOptions::default()
        };
        let err = client(&opts).unwrap_err();
        assert_eq!(crate::exit::code_of(&err), Code::Usage);
    }
}
