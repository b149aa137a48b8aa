//! Sending one check's request: the suite's cookie jar applied to each hop, redirects
//! followed here (not by the HTTP client) so that cookies set on the way are kept, the hops
//! counted for `expect.redirects`, and the whole exchange bounded by the check's timeout.
//! With `-vv` each request and answer is shown on stderr, redacted, as `hurl --verbose` does.

use std::time::{Duration, Instant};

use standby_common::probe::http::{self, FetchError, HttpResponse, Request};
use standby_common::probe::Failure;

use crate::cookies::{Jar, SetCookie};
use crate::expect::Hops;
use crate::redact::Redactor;

/// Redirects followed at most.
pub const MAX_REDIRECTS: u32 = 10;

/// Bytes of a body `-vv` shows.
const TRACE_BODY_CHARS: usize = 500;

/// What a send needs besides the request.
pub struct Exchange<'a> {
    /// A client that never follows redirects itself.
    pub client: &'a reqwest::Client,
    pub jar: Option<&'a Jar>,
    pub follow: bool,
    pub timeout: Duration,
    pub max_body: usize,
    /// `-vv`: show each hop on stderr, through this redactor.
    pub trace: Option<&'a Redactor>,
    /// The check's name, for the trace.
    pub name: &'a str,
}

impl Exchange<'_> {
    /// Send `req`, following redirects when asked; the answer is the last hop's.
    pub async fn send(&self, req: &Request) -> Result<(HttpResponse, Hops), FetchError> {
        let start = Instant::now();
        let deadline = start + self.timeout;
        let mut hops = Hops::default();
        let mut req = req.clone();
        let own_cookie = req.headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("cookie"));
        loop {
            let url = reqwest::Url::parse(&req.url).ok();
            let mut hop = req.clone();
            if let (Some(jar), Some(url), false) = (self.jar, &url, own_cookie) {
                hop.headers.extend(jar.header_for(url).map(|c| ("cookie".to_string(), c)));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                let message = format!("no complete answer within {:?}", self.timeout);
                return Err(FetchError { failure: Failure::Timeout, message, latency: start.elapsed() });
            }
            self.trace_request(&hop);
            let mut resp = http::fetch(self.client, &hop, left, self.max_body).await.map_err(|e| {
                self.trace_line(&format!("* {}", e.message));
                FetchError { latency: start.elapsed(), ..e }
            })?;
            self.trace_response(&resp);
            for value in resp.headers.get_all(reqwest::header::SET_COOKIE) {
                let Some(cookie) = SetCookie::parse(&String::from_utf8_lossy(value.as_bytes())) else { continue };
                if let (Some(jar), Some(url)) = (self.jar, &url) {
                    jar.store(url, &cookie);
                }
                hops.set_cookies.push(cookie);
            }
            let location = resp.headers.get(reqwest::header::LOCATION).and_then(|v| v.to_str().ok());
            let next = match (self.follow, resp.status, location, &url) {
                (true, 301 | 302 | 303 | 307 | 308, Some(location), Some(url)) => url.join(location).ok(),
                _ => None,
            };
            let Some(next) = next else {
                resp.latency = start.elapsed();
                return Ok((resp, hops));
            };
            if hops.redirects >= MAX_REDIRECTS {
                let message = format!(
                    "too many redirects: more than {MAX_REDIRECTS} (last to {})",
                    standby_common::secret::redact(next.as_str())
                );
                return Err(FetchError { failure: Failure::Protocol, message, latency: start.elapsed() });
            }
            hops.redirects += 1;
            // 303, and 301/302 after a POST, become a GET without a body (as browsers and
            // curl -L do); 307/308 repeat the request as it was.
            let to_get = resp.status == 303 && req.method != reqwest::Method::HEAD
                || matches!(resp.status, 301 | 302) && req.method == reqwest::Method::POST;
            if to_get {
                req.method = reqwest::Method::GET;
                req.body = None;
                req.headers.retain(|(k, _)| !k.eq_ignore_ascii_case("content-type"));
            }
            // Credentials never follow a redirect to another origin.
            if url.as_ref().map(reqwest::Url::origin) != Some(next.origin()) {
                req.headers
                    .retain(|(k, _)| !k.eq_ignore_ascii_case("authorization") && !k.eq_ignore_ascii_case("cookie"));
            }
            req.url = next.to_string();
        }
    }

    fn trace_line(&self, line: &str) {
        if let Some(r) = self.trace {
            eprintln!("{}", crate::report::one_line(&r.text(line)));
        }
    }

    fn trace_request(&self, req: &Request) {
        if self.trace.is_none() {
            return;
        }
        self.trace_line(&format!("* {}", self.name));
        self.trace_line(&format!("> {} {}", req.method, req.url));
        // The HTTP client's own defaults, unless the check replaces them.
        let defaults = [("user-agent", concat!("standby/", env!("CARGO_PKG_VERSION"))), ("accept", "*/*")];
        for (k, v) in defaults.iter().filter(|(k, _)| !req.headers.iter().any(|(h, _)| h.eq_ignore_ascii_case(k))) {
            self.trace_line(&format!("> {k}: {v}"));
        }
        for (k, v) in &req.headers {
            let v = if k.eq_ignore_ascii_case("authorization") || k.eq_ignore_ascii_case("cookie") {
                hide_credentials(v)
            } else {
                v.clone()
            };
            self.trace_line(&format!("> {k}: {v}"));
        }
        if let Some(body) = &req.body {
            self.trace_line(&format!("> [{} bytes] {}", body.len(), http::excerpt(body, TRACE_BODY_CHARS)));
        }
    }

    fn trace_response(&self, resp: &HttpResponse) {
        if self.trace.is_none() {
            return;
        }
        self.trace_line(&format!("< {} ({} ms)", resp.status, resp.latency.as_millis()));
        for (k, v) in &resp.headers {
            let v = String::from_utf8_lossy(v.as_bytes());
            let v = if k == reqwest::header::SET_COOKIE { hide_credentials(&v) } else { v.into_owned() };
            self.trace_line(&format!("< {k}: {v}"));
        }
        let encoding = resp.headers.get(reqwest::header::CONTENT_ENCODING).and_then(|v| v.to_str().ok());
        match encoding.filter(|e| !e.eq_ignore_ascii_case("identity")) {
            // Compressed bytes say nothing to a person; the check judges the decoded body.
            Some(encoding) => self.trace_line(&format!("< [{} bytes, {encoding}]", resp.body.len())),
            None => self.trace_line(&format!(
                "< [{} bytes] {}",
                resp.body.len(),
                http::excerpt(&resp.body, TRACE_BODY_CHARS)
            )),
        }
    }
}

/// `Basic dXNlcjpw` → `Basic ***`; `a=1; b=2` → `a=***; b=***`.
fn hide_credentials(value: &str) -> String {
    if let Some((scheme, _)) = value.split_once(' ').filter(|(s, _)| !s.contains('=')) {
        return format!("{scheme} ***");
    }
    value
        .split(';')
        .map(|pair| match pair.split_once('=') {
            Some((k, _)) if !k.trim().is_empty() && !is_attribute(k) => format!("{k}=***"),
            _ => pair.to_string(),
        })
        .collect::<Vec<_>>()
        .join(";")
}

fn is_attribute(key: &str) -> bool {
    ["path", "domain", "expires", "max-age", "samesite"].contains(&key.trim().to_ascii_lowercase().as_str())
}
