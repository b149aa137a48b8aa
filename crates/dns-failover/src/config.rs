//! The `[dns-failover]` section: thresholds, the control targets, the providers' API
//! settings and the `[[dns-failover.record]]` entries.
//!
//! ```toml
//! [dns-failover]
//! failure-threshold = 3          # consecutive failed checks before switching to the backup
//! recovery-threshold = 3         # consecutive good checks before failing back
//! failback = "auto"              # auto | manual
//! interval = "1s"                # for `watch`
//! control = ["tcp://198.51.100.53:53"]   # must be reachable for a failure to count
//!
//! [dns-failover.cloudflare]
//! api-url = "https://api.cloudflare.com/client/v4/"
//! token-env = "CLOUDFLARE_API_TOKEN"    # or token-file
//!
//! [dns-failover.powerdns]
//! api-url = "http://127.0.0.1:8081"
//! api-key-env = "PDNS_API_KEY"          # or api-key-file
//! server-id = "localhost"
//!
//! [[dns-failover.record]]
//! name = "app.example.com"
//! zone = "example.com"
//! type = "A"                     # A | AAAA | CNAME
//! provider = "cloudflare"        # cloudflare | powerdns
//! primary = ["192.0.2.10", "192.0.2.11"]
//! backup = ["198.51.100.20"]
//! check = "https://192.0.2.10/health"
//! backup-check = "https://198.51.100.20/health"
//! ```

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use standby_common::duration::HumanDuration;
use toml::Spanned;

/// Switch back to the primary by itself, or only when a person says so.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Failback {
    Auto,
    Manual,
}

standby_common::section! {
    /// Settings of dns-failover.
    pub struct Config {
        /// Consecutive failed checks of the primary before switching to the backup
        #[arg(long, value_name = "N", default_value_t = 3)]
        pub failure_threshold: u32,
        /// Consecutive good checks of the primary before switching back
        #[arg(long, value_name = "N", default_value_t = 3)]
        pub recovery_threshold: u32,
        /// Switch back by itself (auto) or only with `switch --to primary` (manual)
        #[arg(long, value_enum, default_value = "auto")]
        pub failback: Failback,
        /// Time between rounds of `watch`
        #[arg(long, value_name = "DUR", default_value = "1s")]
        pub interval: HumanDuration,
        /// Timeout of each health check
        #[arg(long, value_name = "DUR", default_value = "2s")]
        pub timeout: HumanDuration,
        /// Control targets (http(s):// or tcp://host:port), e.g. the ISP gateway: while none
        /// answers, this monitor is isolated and a failed check does not count (repeatable)
        #[arg(long, value_name = "URL")]
        pub control: Vec<String>,
        /// This instance's name among several vantages [default: the host name]
        #[arg(long)]
        pub vantage: Option<String>,
        /// A PostgreSQL database shared by several dns-failover instances (the one
        /// downtime-monitor's `store` uses): each records its view, a switch needs `quorum`
        #[arg(long, value_name = "URL")]
        pub store: Option<String>,
        /// The store's password from this env var [default: PGPASSWORD]
        #[arg(long, value_name = "VAR")]
        pub store_password_env: Option<String>,
        /// The store's password from this file (chmod 600)
        #[arg(long, value_name = "FILE")]
        pub store_password_file: Option<PathBuf>,
        /// A CA to trust for the store's TLS certificate (besides the system's)
        #[arg(long, value_name = "FILE")]
        pub store_cacert: Option<PathBuf>,
        /// Vantages that must see the primary down (or back) within the last
        /// interval × failure-threshold before a switch (needs `store`)
        #[arg(long, value_name = "N", default_value_t = 1)]
        pub quorum: usize,
        /// The Cloudflare API: file only
        #[arg(skip)]
        pub cloudflare: CloudflareSpec,
        /// The PowerDNS API: file only
        #[arg(skip)]
        pub powerdns: PowerDnsSpec,
        /// The records to switch: file only
        #[arg(skip)]
        #[serde(rename = "record")]
        pub records: Vec<Spanned<RecordSpec>>,
    }
}

/// `[dns-failover.cloudflare]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct CloudflareSpec {
    pub api_url: String,
    /// The API token from this env var [default: CLOUDFLARE_API_TOKEN].
    pub token_env: Option<String>,
    pub token_file: Option<PathBuf>,
}

impl Default for CloudflareSpec {
    fn default() -> Self {
        CloudflareSpec { api_url: "https://api.cloudflare.com/client/v4/".into(), token_env: None, token_file: None }
    }
}

/// `[dns-failover.powerdns]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct PowerDnsSpec {
    pub api_url: String,
    /// The API key from this env var [default: PDNS_API_KEY].
    pub api_key_env: Option<String>,
    pub api_key_file: Option<PathBuf>,
    pub server_id: String,
}

impl Default for PowerDnsSpec {
    fn default() -> Self {
        PowerDnsSpec {
            api_url: "http://127.0.0.1:8081".into(),
            api_key_env: None,
            api_key_file: None,
            server_id: "localhost".into(),
        }
    }
}

/// Which DNS service holds a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProviderKind {
    Cloudflare,
    Powerdns,
}

/// Record types dns-failover switches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RecordType {
    A,
    AAAA,
    CNAME,
}

impl RecordType {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordType::A => "A",
            RecordType::AAAA => "AAAA",
            RecordType::CNAME => "CNAME",
        }
    }
}

/// One `[[dns-failover.record]]` as written.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RecordSpec {
    pub name: String,
    pub zone: String,
    #[serde(rename = "type")]
    pub rtype: RecordType,
    pub provider: ProviderKind,
    /// Every value of the record set while the primary is live.
    pub primary: Vec<String>,
    /// Every value of the record set while on the backup.
    pub backup: Vec<String>,
    /// The primary's health check (http, https or tcp URL; by address, never through this record).
    pub check: String,
    /// The backup's health check: a switch to a failing backup is refused.
    pub backup_check: Option<String>,
    pub failure_threshold: Option<u32>,
    pub recovery_threshold: Option<u32>,
    pub failback: Option<Failback>,
    /// Set the TTL on a switch [default: kept as found].
    pub ttl: Option<u32>,
    /// Cloudflare only: set proxying on a switch [default: kept as found].
    pub proxied: Option<bool>,
}
