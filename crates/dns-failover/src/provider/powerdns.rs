//! PowerDNS authoritative through its HTTP API: the zone is read with `GET
//! /api/v1/servers/<id>/zones/<zone>.` and one RRset replaced with `PATCH` and
//! `"changetype": "REPLACE"` (one atomic change: the old and new values never mix).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use serde_json::{json, Value};
use standby_common::exit::{self, Code};
use standby_common::retry::{self, Throttled};
use standby_common::secret::{self, Secret};

use super::{retry_policy, transport_error, verdict, ApiError, RecordSet};
use crate::config::{PowerDnsSpec, RecordType};
use crate::record::{normalise_all, Record};

/// A PowerDNS server's API.
pub struct PowerDns {
    client: reqwest::Client,
    /// `http://host:port/api/v1/servers/<id>`.
    server: String,
    key: Secret,
    calls: Arc<AtomicU64>,
}

impl PowerDns {
    pub fn new(spec: &PowerDnsSpec, timeout: Duration, calls: Arc<AtomicU64>) -> anyhow::Result<PowerDns> {
        let key = secret::resolve(
            "PowerDNS API key",
            spec.api_key_env.as_deref(),
            spec.api_key_file.as_deref(),
            "PDNS_API_KEY",
        )?
        .ok_or_else(|| {
            exit::error(
                Code::Usage,
                "PowerDNS API key: set PDNS_API_KEY, or api-key-env / api-key-file in [dns-failover.powerdns]",
            )
        })?;
        let mut base = spec.api_url.trim().trim_end_matches('/').to_string();
        url::Url::parse(&base)
            .map_err(|e| exit::error(Code::Usage, format!("[dns-failover.powerdns] api-url {base:?}: {e}")))?;
        if !base.ends_with("/api/v1") {
            base.push_str("/api/v1");
        }
        let client = reqwest::Client::builder()
            .timeout(timeout.max(Duration::from_secs(5)))
            .connect_timeout(timeout.max(Duration::from_secs(2)))
            .user_agent(concat!("standby-dns-failover/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(PowerDns { client, server: format!("{base}/servers/{}", spec.server_id), key, calls })
    }

    pub async fn read(&self, record: &Record) -> anyhow::Result<RecordSet> {
        let zone = self.call("GET", &zone_path(record), None, &format!("read zone {}", record.zone)).await?;
        let name = absolute(&record.name);
        let rrset = zone["rrsets"].as_array().into_iter().flatten().find(|r| {
            r["name"].as_str().is_some_and(|n| n.eq_ignore_ascii_case(&name)) && r["type"] == record.rtype.as_str()
        });
        let Some(rrset) = rrset else {
            return Ok(RecordSet { values: Vec::new(), ttl: None, proxied: None });
        };
        let values: Vec<String> = rrset["records"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|r| !r["disabled"].as_bool().unwrap_or(false))
            .filter_map(|r| r["content"].as_str().map(String::from))
            .collect();
        let ttl = rrset["ttl"].as_u64().and_then(|t| u32::try_from(t).ok());
        Ok(RecordSet { values: normalise_all(record.rtype, &values), ttl, proxied: None })
    }

    pub async fn replace(&self, record: &Record, values: &[String]) -> anyhow::Result<()> {
        let ttl = match record.ttl {
            Some(ttl) => ttl,
            None => self.read(record).await?.ttl.unwrap_or(60),
        };
        let records: Vec<Value> = values
            .iter()
            .map(|v| {
                let content = if record.rtype == RecordType::CNAME { absolute(v) } else { v.clone() };
                json!({ "content": content, "disabled": false })
            })
            .collect();
        let body = json!({ "rrsets": [{
            "name": absolute(&record.name),
            "type": record.rtype.as_str(),
            "ttl": ttl,
            "changetype": "REPLACE",
            "records": records,
        }]});
        self.call(
            "PATCH",
            &zone_path(record),
            Some(&body),
            &format!("replace {} {}", record.name, record.rtype.as_str()),
        )
        .await?;
        Ok(())
    }

    async fn call(&self, method: &str, path: &str, body: Option<&Value>, what: &str) -> anyhow::Result<Value> {
        let (backoff, budget) = retry_policy();
        backoff
            .run_within(budget, |_| self.once(method, path, body), verdict)
            .await
            .with_context(|| format!("PowerDNS API: {what}"))
    }

    async fn once(&self, method: &str, path: &str, body: Option<&Value>) -> anyhow::Result<Value> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let method = reqwest::Method::from_bytes(method.as_bytes())?;
        let mut request =
            self.client.request(method, format!("{}{path}", self.server)).header("X-API-Key", self.key.expose());
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| transport_error(&e))?;
        let status = response.status();
        let wait = retry::retry_after(&response);
        let text = response.text().await.unwrap_or_default();
        if status.is_success() {
            return Ok(if text.trim().is_empty() { Value::Null } else { serde_json::from_str(&text)? });
        }
        let detail: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let detail = detail["error"].as_str().map(String::from).unwrap_or_else(|| text.chars().take(200).collect());
        let code = status.as_u16();
        if code == 429 {
            return Err(anyhow::Error::new(Throttled {
                what: "PowerDNS API".into(),
                retry_after: wait.unwrap_or(Duration::from_secs(1)),
            }));
        }
        let message = match code {
            401 | 403 => format!("PowerDNS refused the API key: HTTP {code}; check api-key-env / api-key-file"),
            404 => format!("PowerDNS: HTTP 404 ({detail}): check `zone` and server-id"),
            _ => format!("PowerDNS answered HTTP {code}: {}", secret::redact(&detail)),
        };
        Err(anyhow::Error::new(ApiError { message, retryable: status.is_server_error() }))
    }
}

fn zone_path(record: &Record) -> String {
    format!("/zones/{}", absolute(&record.zone))
}

/// `name.` (PowerDNS wants absolute names).
fn absolute(name: &str) -> String {
    format!("{}.", name.trim_end_matches('.'))
}
