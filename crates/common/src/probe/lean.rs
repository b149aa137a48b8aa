//! A lean HTTP client for probes sent thousands of times a minute (`downtime-monitor watch`):
//! hyper's pooled HTTP/1.1 client with the same TLS choices as [`super::http::client`], but
//! without reqwest's layers (redirect and retry policies, URL re-parsing, default headers),
//! which cost more CPU than the request itself on a busy monitor. It does only what a plain
//! check needs: one request, its status, headers and a bounded body. Checks that need more
//! (redirects, `resolve` pins, a peer certificate) use reqwest.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use reqwest::header::{HeaderName, HeaderValue, USER_AGENT};

use super::error_chain;
use super::http::{FetchError, HttpResponse, Request, TlsOptions};
use super::Failure;

type Connector = hyper_rustls::HttpsConnector<HttpConnector>;

/// A pooled client for `http://` and `https://` GETs (and other body-less requests).
#[derive(Clone, Debug)]
pub struct LeanClient {
    client: Client<Connector, Empty<Bytes>>,
}

impl LeanClient {
    /// Verified TLS (system + webpki roots, plus `tls.ca_file`), as reqwest's client has;
    /// `connect_timeout` bounds each new connection.
    pub fn new(tls: &TlsOptions, connect_timeout: Duration) -> anyhow::Result<LeanClient> {
        let mut config = super::tls::client_config(tls.ca_file.as_deref())?;
        // The connector sets ALPN itself (HTTP/1.1 only), and refuses a config that has it.
        config.alpn_protocols.clear();
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(connect_timeout));
        http.set_nodelay(true);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(config)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new()).pool_idle_timeout(Duration::from_secs(90)).build(connector);
        Ok(LeanClient { client })
    }

    /// Whether this client can send `req` as it is: no body, an `http(s)://` URL that hyper
    /// takes as it is, with no credentials in it. Anything else goes through reqwest.
    pub fn can_send(req: &Request) -> bool {
        req.body.is_none()
            && uri(&req.url).is_some_and(|u| {
                matches!(u.scheme_str(), Some("http" | "https"))
                    && u.authority().is_some_and(|a| !a.as_str().contains('@'))
            })
    }

    /// Send one request, as [`super::http::fetch`] does: never past `timeout`, never more
    /// than `max_body` bytes of body read.
    pub async fn fetch(&self, req: &Request, timeout: Duration, max_body: usize) -> Result<HttpResponse, FetchError> {
        let start = Instant::now();
        let fail = |failure, message: String| FetchError { failure, message, latency: start.elapsed() };
        let Some(target) = uri(&req.url) else {
            return Err(fail(Failure::Protocol, "not a URL this client can send".to_string()));
        };
        let mut builder = hyper::Request::builder().method(req.method.clone()).uri(target);
        if let Some(headers) = builder.headers_mut() {
            headers.insert(USER_AGENT, HeaderValue::from_static(concat!("standby/", env!("CARGO_PKG_VERSION"))));
            for (k, v) in &req.headers {
                let name = HeaderName::from_bytes(k.as_bytes())
                    .map_err(|_| fail(Failure::Protocol, format!("invalid header name {k:?}")))?;
                let value = HeaderValue::from_str(v)
                    .map_err(|_| fail(Failure::Protocol, format!("invalid value for header {k}")))?;
                headers.append(name, value);
            }
        }
        let request = builder.body(Empty::new()).map_err(|e| fail(Failure::Protocol, e.to_string()))?;
        let work = async {
            let resp = self.client.request(request).await.map_err(|e| classify(&e))?;
            let (parts, mut body) = resp.into_parts();
            let mut bytes = Vec::new();
            let mut truncated = false;
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(|e| (Failure::Protocol, crate::secret::redact(&error_chain(&e))))?;
                let Ok(chunk) = frame.into_data() else { continue };
                let room = max_body.saturating_sub(bytes.len());
                if chunk.len() > room {
                    bytes.extend_from_slice(&chunk[..room]);
                    truncated = true;
                    break;
                }
                bytes.extend_from_slice(&chunk);
            }
            Ok::<_, (Failure, String)>((parts, bytes, truncated))
        };
        match tokio::time::timeout(timeout, work).await {
            Err(_) => Err(fail(Failure::Timeout, format!("no complete answer within {timeout:?}"))),
            Ok(Err((failure, message))) => Err(fail(failure, message)),
            Ok(Ok((parts, body, truncated))) => Ok(HttpResponse {
                status: parts.status.as_u16(),
                headers: parts.headers,
                body,
                truncated,
                latency: start.elapsed(),
                final_url: req.url.clone(),
                peer_certificate: None,
            }),
        }
    }
}

fn uri(url: &str) -> Option<hyper::Uri> {
    url.parse::<hyper::Uri>().ok()
}

/// Sort a hyper client error into a [`Failure`], as `http::classify` does for reqwest's.
fn classify(e: &hyper_util::client::legacy::Error) -> (Failure, String) {
    let mut text = crate::secret::redact(&error_chain(e));
    let lower = text.to_lowercase();
    let failure = if lower.contains("corrupt message") || lower.contains("invalidcontenttype") {
        text.push_str(" (the server does not speak TLS on this port: is it plain http://?)");
        Failure::Protocol
    } else if lower.contains("certificate") || lower.contains("tls") || lower.contains("handshake") {
        Failure::Tls
    } else if lower.contains("timed out") || lower.contains("timeout") {
        Failure::Timeout
    } else if e.is_connect() {
        Failure::Unreachable
    } else {
        Failure::Protocol
    };
    (failure, text)
}
