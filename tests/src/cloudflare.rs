//! A fake of the Cloudflare v4 API (zones and DNS records) with the real envelopes, for
//! driving the `cloudflare` crate and the tools against a custom base URL.

use std::collections::{HashMap, VecDeque};
use std::net::{Ipv4Addr, Ipv6Addr, TcpListener};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::Context;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::serve::InProcessServer;
use crate::util::rfc3339_now;

/// A fault applied to the next requests, before authentication and routing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this status and an error envelope. 429 also gets `Retry-After: 1` and
    /// error code 971, like Cloudflare's rate limiter; other codes use the status as the
    /// error code.
    Status(u16),
    /// Wait this long, then handle the request normally.
    Delay(Duration),
}

#[derive(Debug, Clone)]
struct ZoneRec {
    id: String,
    name: String,
    created_on: String,
}

#[derive(Debug, Clone)]
struct RecordRec {
    id: String,
    zone_id: String,
    zone_name: String,
    name: String,
    rtype: String,
    content: String,
    ttl: u32,
    proxied: bool,
    priority: Option<u16>,
    comment: Option<String>,
    created_on: String,
    modified_on: String,
}

#[derive(Debug, Default)]
struct Inner {
    account_id: String,
    token: String,
    zones: Vec<ZoneRec>,
    records: Vec<RecordRec>,
    faults: VecDeque<Fault>,
    requests: Vec<(String, String)>,
}

type Shared = Arc<Mutex<Inner>>;

fn lock(shared: &Shared) -> MutexGuard<'_, Inner> {
    shared.lock().unwrap_or_else(|poison| poison.into_inner())
}

/// The fake API on 127.0.0.1:`port`, served from its own thread; stopped on drop.
///
/// Endpoints (under `/client/v4`): `GET /zones?name=`, `GET /zones/{zone_id}`,
/// `GET|POST /zones/{zone_id}/dns_records` (list filters `name`, `type`, `content`,
/// pagination `page`, `per_page`), `GET|PUT|PATCH|DELETE /zones/{zone_id}/dns_records/{id}`.
/// Every request needs `Authorization: Bearer <token>`, else 403 with error code 9109.
pub struct FakeCloudflare {
    /// The port on 127.0.0.1.
    pub port: u16,
    /// The API token the fake accepts.
    pub token: String,
    shared: Shared,
    server: Option<InProcessServer>,
}

impl FakeCloudflare {
    /// Starts the fake on a free port, with no zones.
    pub fn start() -> anyhow::Result<FakeCloudflare> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).context("bind 127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let token = format!("standby-e2e-{}", hex_id());
        let shared: Shared =
            Arc::new(Mutex::new(Inner { account_id: hex_id(), token: token.clone(), ..Inner::default() }));
        let router = Router::new().fallback(handle).with_state(shared.clone());
        let server = InProcessServer::start("cloudflare", listener, router)?;
        Ok(FakeCloudflare { port, token, shared, server: Some(server) })
    }

    /// `http://127.0.0.1:PORT/client/v4/` (the trailing slash matters to the crate's URL
    /// joining).
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}/client/v4/", self.port)
    }

    /// Adds an active zone; returns its id (32 hex chars).
    pub fn add_zone(&self, name: &str) -> String {
        let zone =
            ZoneRec { id: hex_id(), name: name.trim_end_matches('.').to_ascii_lowercase(), created_on: rfc3339_now() };
        let id = zone.id.clone();
        lock(&self.shared).zones.push(zone);
        id
    }

    /// The id of the zone called `name`.
    pub fn zone_id(&self, name: &str) -> Option<String> {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        lock(&self.shared).zones.iter().find(|z| z.name == name).map(|z| z.id.clone())
    }

    /// Adds a record without validation (`name` may be relative to the zone or `@`);
    /// returns its id. MX records get priority 10.
    pub fn add_record(&self, zone_id: &str, name: &str, rtype: &str, content: &str, ttl: u32, proxied: bool) -> String {
        let mut inner = lock(&self.shared);
        let zone_name = inner.zones.iter().find(|z| z.id == zone_id).map(|z| z.name.clone()).unwrap_or_default();
        let now = rfc3339_now();
        let rtype = rtype.to_ascii_uppercase();
        let record = RecordRec {
            id: hex_id(),
            zone_id: zone_id.to_string(),
            name: full_name(name, &zone_name),
            priority: (rtype == "MX").then_some(10),
            rtype,
            content: content.to_string(),
            ttl,
            proxied,
            comment: None,
            created_on: now.clone(),
            modified_on: now,
            zone_name,
        };
        let id = record.id.clone();
        inner.records.push(record);
        id
    }

    /// The record as the API would return it.
    pub fn record(&self, zone_id: &str, id: &str) -> Option<Value> {
        lock(&self.shared).records.iter().find(|r| r.zone_id == zone_id && r.id == id).map(record_json)
    }

    /// All records of a zone, as the API would return them.
    pub fn records(&self, zone_id: &str) -> Vec<Value> {
        lock(&self.shared).records.iter().filter(|r| r.zone_id == zone_id).map(record_json).collect()
    }

    /// Applies `fault` to the next `times` requests (after faults already queued).
    pub fn inject(&self, fault: Fault, times: usize) {
        let mut inner = lock(&self.shared);
        inner.faults.extend(std::iter::repeat_n(fault, times));
    }

    /// Every request received so far: (method, path without query).
    pub fn requests(&self) -> Vec<(String, String)> {
        lock(&self.shared).requests.clone()
    }

    /// Forgets the requests received so far.
    pub fn clear_requests(&self) {
        lock(&self.shared).requests.clear();
    }

    /// Stops serving (connections are refused from now on).
    pub fn stop(&mut self) {
        if let Some(mut server) = self.server.take() {
            server.shutdown();
        }
    }
}

impl Drop for FakeCloudflare {
    fn drop(&mut self) {
        self.stop();
    }
}

fn hex_id() -> String {
    format!("{:032x}", fastrand::u128(..))
}

/// Cloudflare's form of a record name: absolute, lower case, no trailing dot; `@` and
/// names outside the zone are taken as relative to it.
fn full_name(name: &str, zone: &str) -> String {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    if zone.is_empty() {
        name
    } else if name.is_empty() || name == "@" {
        zone.to_string()
    } else if name == zone || name.ends_with(&format!(".{zone}")) {
        name
    } else {
        format!("{name}.{zone}")
    }
}

fn zone_json(zone: &ZoneRec, account_id: &str) -> Value {
    json!({
        "id": zone.id,
        "name": zone.name,
        "status": "active",
        "paused": false,
        "type": "full",
        "development_mode": 0,
        "name_servers": ["ada.ns.cloudflare.com", "bob.ns.cloudflare.com"],
        "original_name_servers": ["ns1.example.net", "ns2.example.net"],
        "original_registrar": null,
        "original_dnshost": null,
        "vanity_name_servers": [],
        "created_on": zone.created_on,
        "modified_on": zone.created_on,
        "activated_on": zone.created_on,
        "meta": {
            "step": 2,
            "custom_certificate_quota": 0,
            "page_rule_quota": 3,
            "phishing_detected": false,
            "multiple_railguns_allowed": false
        },
        "owner": { "id": null, "type": "user", "email": null },
        "account": { "id": account_id, "name": "standby test account" },
        "tenant": { "id": null, "name": null },
        "tenant_unit": { "id": null },
        "permissions": ["#dns_records:edit", "#dns_records:read", "#zone:read"],
        "plan": {
            "id": "0feeeeeeeeeeeeeeeeeeeeeeeeeeeeee",
            "name": "Free Website",
            "price": 0,
            "currency": "USD",
            "frequency": "",
            "is_subscribed": true,
            "can_subscribe": false,
            "legacy_id": "free",
            "legacy_discount": false,
            "externally_managed": false
        }
    })
}

fn record_json(r: &RecordRec) -> Value {
    let mut value = json!({
        "id": r.id,
        "zone_id": r.zone_id,
        "zone_name": r.zone_name,
        "name": r.name,
        "type": r.rtype,
        "content": r.content,
        "proxiable": proxiable(&r.rtype),
        "proxied": r.proxied,
        "ttl": r.ttl,
        "locked": false,
        "meta": {
            "auto_added": false,
            "managed_by_apps": false,
            "managed_by_argo_tunnel": false,
            "source": "primary"
        },
        "comment": r.comment,
        "tags": [],
        "created_on": r.created_on,
        "modified_on": r.modified_on
    });
    if let Some(priority) = r.priority {
        value["priority"] = json!(priority);
    }
    value
}

fn proxiable(rtype: &str) -> bool {
    matches!(rtype, "A" | "AAAA" | "CNAME")
}

fn envelope(result: Value) -> Value {
    json!({ "success": true, "errors": [], "messages": [], "result": result })
}

fn failure(status: StatusCode, code: u32, message: &str) -> Response {
    let body = json!({
        "success": false,
        "errors": [{ "code": code, "message": message }],
        "messages": [],
        "result": null
    });
    (status, Json(body)).into_response()
}

/// An error answer, kept small until it becomes a [`Response`].
struct ApiError {
    status: StatusCode,
    code: u32,
    message: String,
}

impl ApiError {
    fn bad_request(code: u32, message: &str) -> ApiError {
        ApiError { status: StatusCode::BAD_REQUEST, code, message: message.to_string() }
    }

    fn into_response(self) -> Response {
        failure(self.status, self.code, &self.message)
    }
}

fn ok(result: Value) -> Response {
    (StatusCode::OK, Json(envelope(result))).into_response()
}

/// A page of `items` and Cloudflare's `result_info`.
fn list(items: Vec<Value>, query: &HashMap<String, String>, default_per_page: usize) -> Response {
    let per_page =
        query.get("per_page").and_then(|p| p.parse::<usize>().ok()).filter(|p| *p > 0).unwrap_or(default_per_page);
    let page = query.get("page").and_then(|p| p.parse::<usize>().ok()).filter(|p| *p > 0).unwrap_or(1);
    let total = items.len();
    let page_items: Vec<Value> = items.into_iter().skip((page - 1) * per_page).take(per_page).collect();
    let mut body = envelope(Value::Array(page_items.clone()));
    body["result_info"] = json!({
        "page": page,
        "per_page": per_page,
        "count": page_items.len(),
        "total_count": total,
        "total_pages": total.div_ceil(per_page)
    });
    (StatusCode::OK, Json(body)).into_response()
}

async fn handle(
    State(shared): State<Shared>,
    method: Method,
    uri: Uri,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (fault, token) = {
        let mut inner = lock(&shared);
        inner.requests.push((method.to_string(), uri.path().to_string()));
        (inner.faults.pop_front(), inner.token.clone())
    };
    match fault {
        Some(Fault::Delay(delay)) => tokio::time::sleep(delay).await,
        Some(Fault::Status(code)) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            if code == 429 {
                let mut response = failure(status, 971, "Please wait and consider throttling your request speed");
                response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                return response;
            }
            let reason = status.canonical_reason().unwrap_or("error");
            return failure(status, u32::from(code), &format!("{reason} (injected fault)"));
        }
        None => {}
    }
    let authorized = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == format!("Bearer {token}"));
    if !authorized {
        return failure(StatusCode::FORBIDDEN, 9109, "Invalid access token");
    }
    let Some(rest) = uri.path().strip_prefix("/client/v4/") else {
        return failure(StatusCode::NOT_FOUND, 7000, "No route for that URI");
    };
    let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    let mut inner = lock(&shared);
    match (method.as_str(), segments.as_slice()) {
        ("GET", ["zones"]) => list_zones(&inner, &query),
        ("GET", ["zones", zone_id]) => match find_zone(&inner, zone_id) {
            Some(zone) => ok(zone_json(&zone, &inner.account_id)),
            None => zone_not_found(),
        },
        ("GET", ["zones", zone_id, "dns_records"]) => list_records(&inner, zone_id, &query),
        ("POST", ["zones", zone_id, "dns_records"]) => create_record(&mut inner, zone_id, &body),
        ("GET", ["zones", zone_id, "dns_records", id]) => {
            match inner.records.iter().find(|r| r.zone_id == *zone_id && r.id == *id) {
                Some(r) => ok(record_json(r)),
                None => record_not_found(),
            }
        }
        ("PUT" | "PATCH", ["zones", zone_id, "dns_records", id]) => {
            update_record(&mut inner, zone_id, id, &body, method == Method::PATCH)
        }
        ("DELETE", ["zones", zone_id, "dns_records", id]) => {
            let before = inner.records.len();
            inner.records.retain(|r| !(r.zone_id == *zone_id && r.id == *id));
            if inner.records.len() == before {
                record_not_found()
            } else {
                ok(json!({ "id": id }))
            }
        }
        (_, ["zones"] | ["zones", _] | ["zones", _, "dns_records"] | ["zones", _, "dns_records", _]) => {
            failure(StatusCode::METHOD_NOT_ALLOWED, 10405, "Method not allowed")
        }
        _ => failure(StatusCode::NOT_FOUND, 7000, "No route for that URI"),
    }
}

fn find_zone(inner: &Inner, zone_id: &str) -> Option<ZoneRec> {
    inner.zones.iter().find(|z| z.id == zone_id).cloned()
}

fn zone_not_found() -> Response {
    failure(StatusCode::NOT_FOUND, 7003, "Could not route to /zones, perhaps your object identifier is invalid?")
}

fn record_not_found() -> Response {
    failure(StatusCode::NOT_FOUND, 81044, "Record does not exist.")
}

fn list_zones(inner: &Inner, query: &HashMap<String, String>) -> Response {
    let name = query.get("name").map(|n| n.trim_end_matches('.').to_ascii_lowercase());
    let status_ok = query.get("status").is_none_or(|s| s == "active");
    let zones: Vec<Value> = inner
        .zones
        .iter()
        .filter(|z| status_ok && name.as_ref().is_none_or(|n| *n == z.name))
        .map(|z| zone_json(z, &inner.account_id))
        .collect();
    list(zones, query, 20)
}

fn list_records(inner: &Inner, zone_id: &str, query: &HashMap<String, String>) -> Response {
    let Some(zone) = find_zone(inner, zone_id) else {
        return zone_not_found();
    };
    let name = query.get("name").or_else(|| query.get("name.exact")).map(|n| full_name(n, &zone.name));
    let rtype = query.get("type").map(|t| t.to_ascii_uppercase());
    let content = query.get("content");
    let records: Vec<Value> = inner
        .records
        .iter()
        .filter(|r| r.zone_id == zone_id)
        .filter(|r| name.as_ref().is_none_or(|n| *n == r.name))
        .filter(|r| rtype.as_ref().is_none_or(|t| *t == r.rtype))
        .filter(|r| content.is_none_or(|c| *c == r.content))
        .map(record_json)
        .collect();
    list(records, query, 100)
}

fn parse_body(body: &Bytes) -> Result<serde_json::Map<String, Value>, ApiError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(ApiError::bad_request(9207, "Request body is invalid.")),
    }
}

/// Applies the fields of `body` to `record` and checks the result like Cloudflare does.
fn apply(record: &mut RecordRec, body: &serde_json::Map<String, Value>, zone_name: &str) -> Result<(), ApiError> {
    let bad = |code: u32, message: &str| Err(ApiError::bad_request(code, message));
    if let Some(name) = body.get("name") {
        match name.as_str() {
            Some(name) => record.name = full_name(name, zone_name),
            None => return bad(9000, "DNS name is invalid."),
        }
    }
    if let Some(rtype) = body.get("type") {
        match rtype.as_str() {
            Some(t) => record.rtype = t.to_ascii_uppercase(),
            None => return bad(9004, "DNS record type is invalid."),
        }
    }
    if let Some(content) = body.get("content") {
        match content.as_str() {
            Some(c) => record.content = c.to_string(),
            None => return bad(9003, "DNS content is invalid."),
        }
    }
    if let Some(ttl) = body.get("ttl") {
        match ttl.as_u64().and_then(|t| u32::try_from(t).ok()) {
            Some(t) => record.ttl = t,
            None => return bad(9021, "Invalid TTL."),
        }
    }
    if let Some(proxied) = body.get("proxied") {
        match proxied.as_bool() {
            Some(p) => record.proxied = p,
            None => return bad(9003, "Invalid 'proxied' value, must be a boolean"),
        }
    }
    if let Some(priority) = body.get("priority") {
        record.priority = priority.as_u64().and_then(|p| u16::try_from(p).ok());
    }
    if let Some(comment) = body.get("comment") {
        record.comment = comment.as_str().map(String::from);
    }
    if record.name.is_empty() {
        return bad(9007, "DNS name is required.");
    }
    if record.rtype.is_empty() {
        return bad(9004, "DNS record type is required.");
    }
    if !(record.name == zone_name || record.name.ends_with(&format!(".{zone_name}"))) {
        return bad(9005, "DNS name is not within the zone.");
    }
    match record.rtype.as_str() {
        "A" if record.content.parse::<Ipv4Addr>().is_err() => {
            return bad(9005, "Content for A record must be a valid IPv4 address.");
        }
        "AAAA" if record.content.parse::<Ipv6Addr>().is_err() => {
            return bad(9006, "Content for AAAA record must be a valid IPv6 address.");
        }
        "MX" if record.priority.is_none() => record.priority = Some(10),
        _ if record.content.is_empty() => return bad(9003, "DNS content is required."),
        _ => {}
    }
    if !(record.ttl == 1 || (30..=86_400).contains(&record.ttl)) {
        return bad(9021, "Invalid TTL. Must be between 60 and 86400 seconds, or 1 for Automatic.");
    }
    if record.proxied && !proxiable(&record.rtype) {
        return bad(9004, "This record type cannot be proxied.");
    }
    Ok(())
}

fn create_record(inner: &mut Inner, zone_id: &str, body: &Bytes) -> Response {
    let Some(zone) = find_zone(inner, zone_id) else {
        return zone_not_found();
    };
    let body = match parse_body(body) {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let now = rfc3339_now();
    let mut record = RecordRec {
        id: hex_id(),
        zone_id: zone.id.clone(),
        zone_name: zone.name.clone(),
        name: String::new(),
        rtype: String::new(),
        content: String::new(),
        ttl: 1,
        proxied: false,
        priority: None,
        comment: None,
        created_on: now.clone(),
        modified_on: now,
    };
    if let Err(e) = apply(&mut record, &body, &zone.name) {
        return e.into_response();
    }
    let duplicate = inner.records.iter().any(|r| {
        r.zone_id == record.zone_id && r.name == record.name && r.rtype == record.rtype && r.content == record.content
    });
    if duplicate {
        return failure(StatusCode::BAD_REQUEST, 81057, "Record already exists.");
    }
    let value = record_json(&record);
    inner.records.push(record);
    ok(value)
}

fn update_record(inner: &mut Inner, zone_id: &str, id: &str, body: &Bytes, patch: bool) -> Response {
    let Some(zone) = find_zone(inner, zone_id) else {
        return zone_not_found();
    };
    let body = match parse_body(body) {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let Some(index) = inner.records.iter().position(|r| r.zone_id == zone_id && r.id == id) else {
        return record_not_found();
    };
    let mut record = inner.records[index].clone();
    if !patch {
        // PUT replaces the record: what the body leaves out gets its default.
        record.ttl = 1;
        record.proxied = false;
        record.priority = None;
        record.comment = None;
        for field in ["name", "type", "content"] {
            if !body.contains_key(field) {
                return failure(StatusCode::BAD_REQUEST, 9000, &format!("DNS record {field} is required."));
            }
        }
    }
    if let Err(e) = apply(&mut record, &body, &zone.name) {
        return e.into_response();
    }
    record.modified_on = rfc3339_now();
    let value = record_json(&record);
    inner.records[index] = record;
    ok(value)
}
