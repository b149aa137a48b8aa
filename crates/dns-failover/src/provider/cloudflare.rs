//! Cloudflare through the `cloudflare` crate's endpoint definitions and response types,
//! sent by our own HTTP client so that a 429's `Retry-After` can be read (the crate's client
//! drops the headers). The zone is looked up by name once; records are listed by name,
//! page by page (a zone can hold thousands).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use cloudflare::endpoints::dns::dns::{
    CreateDnsRecord, CreateDnsRecordParams, DeleteDnsRecord, DnsContent, DnsRecord, ListDnsRecords,
    ListDnsRecordsParams, UpdateDnsRecord, UpdateDnsRecordParams,
};
use cloudflare::endpoints::zones::zone::{ListZones, ListZonesParams};
use cloudflare::framework::endpoint::spec::EndpointSpec;
use cloudflare::framework::endpoint::RequestBody;
use cloudflare::framework::response::{ApiErrors, ApiSuccess};
use cloudflare::framework::Environment;
use standby_common::exit::{self, Code};
use standby_common::retry::{self, Throttled};
use standby_common::secret::{self, Secret};

use super::{retry_policy, transport_error, verdict, ApiError, RecordSet};
use crate::config::{CloudflareSpec, RecordType};
use crate::record::{normalise, normalise_all, Record};

/// Records asked for per page.
const PER_PAGE: u32 = 100;

/// A Cloudflare account's API.
pub struct Cloudflare {
    client: reqwest::Client,
    environment: Environment,
    token: Secret,
    calls: Arc<AtomicU64>,
    zones: Mutex<HashMap<String, String>>,
}

/// One DNS record of a set.
#[derive(Debug, Clone)]
struct Entry {
    id: String,
    value: String,
    ttl: u32,
    proxied: bool,
}

impl Cloudflare {
    pub fn new(spec: &CloudflareSpec, timeout: Duration, calls: Arc<AtomicU64>) -> anyhow::Result<Cloudflare> {
        let token = secret::resolve(
            "Cloudflare API token",
            spec.token_env.as_deref(),
            spec.token_file.as_deref(),
            "CLOUDFLARE_API_TOKEN",
        )?
        .ok_or_else(|| {
            exit::error(
                Code::Usage,
                "Cloudflare API token: set CLOUDFLARE_API_TOKEN, or token-env / token-file in [dns-failover.cloudflare]",
            )
        })?;
        let mut base = spec.api_url.trim().to_string();
        if !base.ends_with('/') {
            base.push('/');
        }
        url::Url::parse(&base)
            .map_err(|e| exit::error(Code::Usage, format!("[dns-failover.cloudflare] api-url {base:?}: {e}")))?;
        let client = reqwest::Client::builder()
            .timeout(timeout.max(Duration::from_secs(5)))
            .connect_timeout(timeout.max(Duration::from_secs(2)))
            .user_agent(concat!("standby-dns-failover/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Cloudflare {
            client,
            environment: Environment::Custom(base),
            token,
            calls,
            zones: Mutex::new(HashMap::new()),
        })
    }

    /// The record set of `record` now.
    pub async fn read(&self, record: &Record) -> anyhow::Result<RecordSet> {
        let entries = self.entries(record).await?;
        let values: Vec<String> = entries.iter().map(|e| e.value.clone()).collect();
        Ok(RecordSet {
            values: normalise_all(record.rtype, &values),
            ttl: entries.first().map(|e| e.ttl),
            proxied: entries.first().map(|e| e.proxied),
        })
    }

    /// Make the set hold exactly `values`: change records in place, then add, then delete,
    /// so the name never resolves to nothing.
    pub async fn replace(&self, record: &Record, values: &[String]) -> anyhow::Result<()> {
        let zone = self.zone_id(&record.zone).await?;
        let entries = self.entries(record).await?;
        let ttl = record.ttl.or(entries.first().map(|e| e.ttl)).unwrap_or(1);
        let proxied = record.proxied.or(entries.first().map(|e| e.proxied)).unwrap_or(false);
        let (keep, mut stale): (Vec<Entry>, Vec<Entry>) = entries.into_iter().partition(|e| values.contains(&e.value));
        let missing: Vec<&String> = values.iter().filter(|v| !keep.iter().any(|e| &e.value == *v)).collect();
        for value in missing {
            let content = content(record.rtype, value)?;
            match stale.pop() {
                Some(old) => {
                    let endpoint = UpdateDnsRecord {
                        zone_identifier: &zone,
                        identifier: &old.id,
                        params: UpdateDnsRecordParams {
                            ttl: Some(ttl),
                            proxied: Some(proxied),
                            name: &record.name,
                            content,
                        },
                    };
                    self.call(&format!("update {} {}", record.name, old.value), &endpoint).await?;
                }
                None => {
                    let endpoint = CreateDnsRecord {
                        zone_identifier: &zone,
                        params: CreateDnsRecordParams {
                            ttl: Some(ttl),
                            priority: None,
                            proxied: Some(proxied),
                            name: &record.name,
                            content,
                        },
                    };
                    self.call(&format!("create {} {value}", record.name), &endpoint).await?;
                }
            }
        }
        for old in stale {
            let endpoint = DeleteDnsRecord { zone_identifier: &zone, identifier: &old.id };
            self.call(&format!("delete {} {}", record.name, old.value), &endpoint).await?;
        }
        Ok(())
    }

    async fn zone_id(&self, zone: &str) -> anyhow::Result<String> {
        if let Some(id) = self.zones.lock().unwrap_or_else(|p| p.into_inner()).get(zone) {
            return Ok(id.clone());
        }
        let endpoint = ListZones { params: ListZonesParams { name: Some(zone.to_string()), ..Default::default() } };
        let found = self.call(&format!("look up zone {zone}"), &endpoint).await?;
        let id =
            found.result.into_iter().find(|z| z.name.eq_ignore_ascii_case(zone)).map(|z| z.id).ok_or_else(|| {
                anyhow::anyhow!("Cloudflare: no zone {zone} in this account (check `zone` and the token's zones)")
            })?;
        self.zones.lock().unwrap_or_else(|p| p.into_inner()).insert(zone.to_string(), id.clone());
        Ok(id)
    }

    /// Every record of the set's name and type, across pages.
    async fn entries(&self, record: &Record) -> anyhow::Result<Vec<Entry>> {
        let zone = self.zone_id(&record.zone).await?;
        let mut out = Vec::new();
        let mut page = 1;
        loop {
            let endpoint = ListDnsRecords {
                zone_identifier: &zone,
                params: ListDnsRecordsParams {
                    name: Some(record.name.clone()),
                    page: Some(page),
                    per_page: Some(PER_PAGE),
                    ..Default::default()
                },
            };
            let answer = self.call(&format!("list {}", record.name), &endpoint).await?;
            let count = answer.result.len();
            out.extend(answer.result.into_iter().filter_map(|r| entry(record.rtype, r)));
            let total_pages = answer.result_info.as_ref().and_then(|i| i.get("total_pages")).and_then(|v| v.as_u64());
            match total_pages {
                Some(total) if u64::from(page) < total => page += 1,
                None if count as u32 >= PER_PAGE => page += 1,
                _ => break,
            }
            if page > 1000 {
                anyhow::bail!("Cloudflare: more than 1000 pages of records named {}", record.name);
            }
        }
        Ok(out)
    }

    /// One API call, retried on no answer, 429 (after its Retry-After) and 5xx.
    async fn call<E>(&self, what: &str, endpoint: &E) -> anyhow::Result<ApiSuccess<E::JsonResponse>>
    where
        E: EndpointSpec + Sync,
    {
        let (backoff, budget) = retry_policy();
        backoff
            .run_within(budget, |_| self.once(endpoint), verdict)
            .await
            .with_context(|| format!("Cloudflare API: {what}"))
    }

    async fn once<E>(&self, endpoint: &E) -> anyhow::Result<ApiSuccess<E::JsonResponse>>
    where
        E: EndpointSpec,
    {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let url = endpoint.url(&self.environment);
        let mut request = self.client.request(endpoint.method(), url).bearer_auth(self.token.expose());
        if let Some(RequestBody::Json(json)) = endpoint.body() {
            request = request.header(reqwest::header::CONTENT_TYPE, "application/json").body(json);
        }
        let response = request.send().await.map_err(|e| transport_error(&e))?;
        let status = response.status();
        if status.is_success() {
            return response.json::<ApiSuccess<E::JsonResponse>>().await.map_err(|e| {
                anyhow::Error::new(ApiError {
                    message: format!(
                        "an answer that is not a Cloudflare API envelope: {}",
                        secret::redact(&e.to_string())
                    ),
                    retryable: false,
                })
            });
        }
        let wait = retry::retry_after(&response);
        let errors: ApiErrors = response.json().await.unwrap_or_default();
        let detail: Vec<String> = errors.errors.iter().map(|e| format!("code {}: {}", e.code, e.message)).collect();
        let detail = if detail.is_empty() { String::new() } else { format!(" ({})", detail.join("; ")) };
        let code = status.as_u16();
        if code == 429 {
            return Err(anyhow::Error::new(Throttled {
                what: format!("Cloudflare API{detail}"),
                retry_after: wait.unwrap_or(Duration::from_secs(1)),
            }));
        }
        let message = match code {
            401 | 403 => format!(
                "Cloudflare refused the API token: HTTP {code}{detail}; check token-env / token-file and that the token may edit DNS of this zone"
            ),
            _ => format!("Cloudflare answered HTTP {code}{detail}"),
        };
        Err(anyhow::Error::new(ApiError { message, retryable: status.is_server_error() }))
    }
}

fn entry(rtype: RecordType, record: DnsRecord) -> Option<Entry> {
    let value = match (rtype, record.content) {
        (RecordType::A, DnsContent::A { content }) => content.to_string(),
        (RecordType::AAAA, DnsContent::AAAA { content }) => content.to_string(),
        (RecordType::CNAME, DnsContent::CNAME { content }) => normalise(RecordType::CNAME, &content).unwrap_or(content),
        _ => return None,
    };
    Some(Entry { id: record.id, value, ttl: record.ttl, proxied: record.proxied })
}

fn content(rtype: RecordType, value: &str) -> anyhow::Result<DnsContent> {
    let bad = |_| anyhow::anyhow!("{value:?} is not a valid {} value", rtype.as_str());
    Ok(match rtype {
        RecordType::A => DnsContent::A { content: value.parse().map_err(bad)? },
        RecordType::AAAA => DnsContent::AAAA { content: value.parse().map_err(bad)? },
        RecordType::CNAME => DnsContent::CNAME { content: value.to_string() },
    })
}
