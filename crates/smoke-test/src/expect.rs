//! Judging an answer against a check's expectations, and taking captures from it. Every
//! unmet expectation is reported (not only the first), each as "expected …, got …".

use std::collections::BTreeMap;

use standby_common::probe::http::{excerpt, HttpResponse};

use crate::cookies::SetCookie;
use crate::suite::{CaptureFrom, Compare, Expect, JsonTest};

/// How much of a body a failure message shows.
pub const EXCERPT_CHARS: usize = 300;

/// What happened on the way to the answer: redirects followed, cookies set on any hop.
#[derive(Debug, Clone, Default)]
pub struct Hops {
    pub redirects: u32,
    /// The `Set-Cookie` headers of every hop, in order.
    pub set_cookies: Vec<SetCookie>,
}

/// The unmet expectations, in a fixed order; empty when the answer is good.
pub fn unmet(expect: &Expect, resp: &HttpResponse, hops: &Hops) -> Vec<String> {
    let mut out = Vec::new();
    if !expect.status.contains(resp.status) {
        out.push(format!("expected status {}, got {}", expect.status, resp.status));
    }
    for (name, want) in &expect.headers {
        match header(resp, name) {
            Some(got) if got == *want => {}
            Some(got) => out.push(format!("expected header {name}: {want:?}, got {got:?}")),
            None => out.push(format!("expected header {name}: {want:?}, got no such header")),
        }
    }
    for (name, re) in &expect.header_regex {
        match header(resp, name) {
            Some(got) if re.is_match(&got) => {}
            Some(got) => out.push(format!("expected header {name} to match /{re}/, got {got:?}")),
            None => out.push(format!("expected header {name} to match /{re}/, got no such header")),
        }
    }
    let needs_text =
        !expect.body_contains.is_empty() || !expect.body_not_contains.is_empty() || expect.body_regex.is_some();
    if needs_text {
        let text = resp.text();
        for needle in &expect.body_contains {
            if !text.contains(needle.as_str()) {
                out.push(format!("expected body to contain {needle:?}"));
            }
        }
        for needle in &expect.body_not_contains {
            if text.contains(needle.as_str()) {
                out.push(format!("expected body not to contain {needle:?}"));
            }
        }
        if let Some(re) = &expect.body_regex {
            if !re.is_match(&text) {
                out.push(format!("expected body to match /{re}/"));
            }
        }
    }
    if !expect.json.is_empty() {
        match serde_json::from_slice::<serde_json::Value>(&resp.body) {
            Err(e) => out.push(format!("expected a JSON body, got invalid JSON ({e})")),
            Ok(doc) => {
                for (pointer, test) in &expect.json {
                    if let Some(msg) = json_unmet(&doc, pointer, test) {
                        out.push(msg);
                    }
                }
            }
        }
    }
    if let Some(want) = &expect.url {
        if resp.final_url != *want {
            out.push(format!("expected final URL {want:?}, got {:?}", resp.final_url));
        }
    }
    if let Some(want) = expect.redirects {
        if hops.redirects != want {
            out.push(format!("expected {want} redirects, got {}", hops.redirects));
        }
    }
    if let Some(want) = expect.bytes {
        if resp.body.len() as u64 != want {
            out.push(format!("expected a body of {want} bytes, got {} bytes", resp.body.len()));
        }
    }
    if let Some(want) = &expect.sha256 {
        let got = sha256_hex(&resp.body);
        if got != *want {
            out.push(format!("expected body sha256 {want}, got {got}"));
        }
    }
    for (name, want) in &expect.cookies {
        match hops.set_cookies.iter().rev().find(|c| c.name == *name) {
            Some(got) => out.extend(want.unmet(name, got)),
            None => out.push(format!("expected the answer to set cookie {name}, it did not")),
        }
    }
    if let Some(max) = expect.max_latency {
        if resp.latency > max {
            out.push(format!("expected latency <= {} ms, took {} ms", max.as_millis(), resp.latency.as_millis()));
        }
    }
    if let Some(days) = expect.cert_valid_days {
        match cert_days_left(resp) {
            Ok(left) if left >= days as i64 => {}
            Ok(left) => out.push(format!("expected certificate valid for >= {days} days, it expires in {left} days")),
            Err(e) => out.push(format!("expected certificate valid for >= {days} days: {e}")),
        }
    }
    if !out.is_empty() && resp.truncated {
        out.push(format!("(the body was cut at max-body, {} bytes: raise max-body / --max-body)", resp.body.len()));
    }
    out
}

fn json_unmet(doc: &serde_json::Value, pointer: &str, test: &JsonTest) -> Option<String> {
    let found = doc.pointer(pointer);
    match (test, found) {
        (JsonTest::Exists(want), got) => {
            (got.is_some() != *want).then(|| format!("expected {pointer} to {}exist", if *want { "" } else { "not " }))
        }
        (_, None) => Some(format!("expected {pointer} to exist, got nothing at that pointer")),
        (JsonTest::Equals(want), Some(got)) => {
            (!json_equal(want, got)).then(|| format!("expected {pointer} == {want}, got {got}"))
        }
        (JsonTest::NotEquals(want), Some(got)) => {
            json_equal(want, got).then(|| format!("expected {pointer} != {want}, got {got}"))
        }
        (JsonTest::Matches(re), Some(got)) => {
            let text = match got {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (!re.is_match(&text)).then(|| format!("expected {pointer} to match /{re}/, got {got}"))
        }
        (JsonTest::Count(want), Some(got)) => {
            let n = match got {
                serde_json::Value::Array(items) => items.len(),
                serde_json::Value::Object(map) => map.len(),
                other => return Some(format!("expected {pointer} to be an array of {want} items, got {other}")),
            };
            (n != *want).then(|| format!("expected {pointer} to have {want} items, got {n}"))
        }
        (JsonTest::Compare(op, n), Some(got)) => {
            let Some(v) = got.as_f64() else {
                return Some(format!("expected {pointer} to be a number, got {got}"));
            };
            let (ok, sym) = match op {
                Compare::Gt => (v > *n, ">"),
                Compare::Gte => (v >= *n, ">="),
                Compare::Lt => (v < *n, "<"),
                Compare::Lte => (v <= *n, "<="),
            };
            (!ok).then(|| format!("expected {pointer} {sym} {n}, got {got}"))
        }
    }
}

/// Lowercase hex SHA-256.
pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(data).iter().map(|b| format!("{b:02x}")).collect()
}

/// Numbers compare by value (TOML `1` equals JSON `1.0`).
fn json_equal(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) if a.is_number() && b.is_number() => x == y,
        _ => a == b,
    }
}

fn header(resp: &HttpResponse, name: &str) -> Option<String> {
    let values: Vec<String> =
        resp.headers.get_all(name).iter().map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()).collect();
    (!values.is_empty()).then(|| values.join(", "))
}

/// Days until the server's certificate expires (negative when expired).
fn cert_days_left(resp: &HttpResponse) -> Result<i64, String> {
    let der = resp.peer_certificate.as_ref().ok_or("no TLS certificate (not HTTPS?)")?;
    let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| format!("unreadable certificate: {e}"))?;
    let not_after = cert.validity().not_after.timestamp();
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
    Ok((not_after - now).div_euclid(86_400))
}

/// Take the check's captures from the answer; a capture that finds nothing is an error.
pub fn captures(list: &[(String, CaptureFrom)], resp: &HttpResponse) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    let doc = || serde_json::from_slice::<serde_json::Value>(&resp.body).ok();
    for (name, from) in list {
        let value = match from {
            CaptureFrom::Header(h) => header(resp, h),
            CaptureFrom::Json(p) => doc().and_then(|d| {
                d.pointer(p).map(|v| match v {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
            }),
            CaptureFrom::Regex(re) => re.captures(&resp.text()).and_then(|c| c.get(1)).map(|m| m.as_str().to_string()),
        };
        match value {
            Some(v) => {
                out.insert(name.clone(), v);
            }
            None => return Err(format!("capture {name}: nothing found in the answer ({})", describe(from))),
        }
    }
    Ok(out)
}

fn describe(from: &CaptureFrom) -> String {
    match from {
        CaptureFrom::Header(h) => format!("header {h}"),
        CaptureFrom::Json(p) => format!("JSON pointer {p}"),
        CaptureFrom::Regex(r) => format!("regex /{r}/"),
    }
}

/// The bounded body excerpt shown with a failure.
pub fn body_excerpt(resp: &HttpResponse) -> String {
    excerpt(&resp.body, EXCERPT_CHARS)
}
