//! `[[dns-failover.record]]` entries checked whole before anything is probed or written:
//! names inside their zone, values that fit the record type, primary and backup sets that
//! differ, health checks that are URLs (`http`, `https`, `tcp`) not pointing through the
//! record itself. Every error names `file:line:col` (exit 2).

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};
use standby_common::config::ConfigFile;
use standby_common::threshold::Thresholds;

use crate::config::{Config, Failback, ProviderKind, RecordSpec, RecordType};
use crate::health::Probe;

/// A record, validated.
#[derive(Debug, Clone, Serialize)]
pub struct Record {
    /// Fully qualified, lower case, no trailing dot.
    pub name: String,
    pub zone: String,
    pub rtype: RecordType,
    pub provider: ProviderKind,
    /// Normalised values (sorted, deduplicated) while the primary is live.
    pub primary: Vec<String>,
    pub backup: Vec<String>,
    pub check: Probe,
    pub backup_check: Option<Probe>,
    pub thresholds: Thresholds,
    pub failback: Failback,
    pub ttl: Option<u32>,
    pub proxied: Option<bool>,
}

/// Which side a record's values at the provider are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Side {
    Primary,
    Backup,
    /// Neither set: changed by hand, or a half-done switch by another tool.
    Other,
}

impl Side {
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Primary => "primary",
            Side::Backup => "backup",
            Side::Other => "other",
        }
    }
}

impl Record {
    /// Which side `values` (as read from the provider) are.
    pub fn side_of(&self, values: &[String]) -> Side {
        let values = normalise_all(self.rtype, values);
        if values == self.primary {
            Side::Primary
        } else if values == self.backup {
            Side::Backup
        } else {
            Side::Other
        }
    }

    /// The values of a side.
    pub fn values(&self, side: Side) -> &[String] {
        match side {
            Side::Backup => &self.backup,
            _ => &self.primary,
        }
    }
}

/// Every record of the section, validated.
pub fn records(file: &ConfigFile, config: &Config) -> anyhow::Result<Vec<Record>> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for spanned in &config.records {
        let spec = spanned.get_ref();
        let err = |m: String| file.error_at(spanned.span().start, format!("record {:?}: {m}", spec.name));
        let record = validate(spec, config).map_err(err)?;
        if !seen.insert((record.name.clone(), record.rtype.as_str())) {
            return Err(err(format!("{} {} is listed twice", record.name, record.rtype.as_str())));
        }
        out.push(record);
    }
    Ok(out)
}

fn validate(spec: &RecordSpec, config: &Config) -> Result<Record, String> {
    let name = fqdn(&spec.name);
    let zone = fqdn(&spec.zone);
    if name.is_empty() || zone.is_empty() {
        return Err("`name` and `zone` must not be empty".into());
    }
    if name != zone && !name.ends_with(&format!(".{zone}")) {
        return Err(format!("name {name} is not inside zone {zone}"));
    }
    let primary = values(spec.rtype, &spec.primary, "primary")?;
    let backup = values(spec.rtype, &spec.backup, "backup")?;
    if primary == backup {
        return Err("`primary` and `backup` hold the same values: there is nothing to switch".into());
    }
    let check = Probe::parse(&spec.check).map_err(|e| format!("check: {e}"))?;
    let backup_check =
        spec.backup_check.as_deref().map(Probe::parse).transpose().map_err(|e| format!("backup-check: {e}"))?;
    for probe in std::iter::once(&check).chain(backup_check.as_ref()) {
        if probe.host().eq_ignore_ascii_case(&name) {
            return Err(format!(
                "the check {} goes through the record it switches: check the server by its address",
                probe.url()
            ));
        }
    }
    if spec.ttl == Some(0) {
        return Err("ttl must be at least 1 (1 = automatic on Cloudflare)".into());
    }
    if spec.proxied.is_some() && spec.provider == ProviderKind::Powerdns {
        return Err("`proxied` is a Cloudflare setting".into());
    }
    Ok(Record {
        name,
        zone,
        rtype: spec.rtype,
        provider: spec.provider,
        primary,
        backup,
        check,
        backup_check,
        thresholds: Thresholds {
            failures: spec.failure_threshold.unwrap_or(config.failure_threshold).max(1),
            successes: spec.recovery_threshold.unwrap_or(config.recovery_threshold).max(1),
        },
        failback: spec.failback.unwrap_or(config.failback),
        ttl: spec.ttl,
        proxied: spec.proxied,
    })
}

/// Lower case, without the trailing dot.
pub fn fqdn(name: &str) -> String {
    name.trim().trim_end_matches('.').to_ascii_lowercase()
}

fn values(rtype: RecordType, list: &[String], key: &str) -> Result<Vec<String>, String> {
    if list.is_empty() {
        return Err(format!("`{key}` needs at least one value"));
    }
    if rtype == RecordType::CNAME && list.len() != 1 {
        return Err(format!("`{key}`: a CNAME holds exactly one value"));
    }
    for value in list {
        normalise(rtype, value).map_err(|e| format!("`{key}`: {e}"))?;
    }
    Ok(normalise_all(rtype, list))
}

/// Sorted, deduplicated, canonical values (values that do not parse are kept as written, so
/// that a record changed by hand still shows as `other`).
pub fn normalise_all(rtype: RecordType, list: &[String]) -> Vec<String> {
    let set: BTreeSet<String> = list.iter().map(|v| normalise(rtype, v).unwrap_or_else(|_| v.clone())).collect();
    set.into_iter().collect()
}

/// One value in canonical form: an IP address as Rust prints it, a host name in lower case
/// without the trailing dot.
pub fn normalise(rtype: RecordType, value: &str) -> Result<String, String> {
    let value = value.trim();
    match rtype {
        RecordType::A => {
            value.parse::<Ipv4Addr>().map(|ip| ip.to_string()).map_err(|_| format!("{value:?} is not an IPv4 address"))
        }
        RecordType::AAAA => {
            value.parse::<Ipv6Addr>().map(|ip| ip.to_string()).map_err(|_| format!("{value:?} is not an IPv6 address"))
        }
        RecordType::CNAME => {
            let host = fqdn(value);
            let ok = !host.is_empty()
                && host.split('.').all(|l| {
                    !l.is_empty()
                        && l.len() <= 63
                        && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                });
            if ok {
                Ok(host)
            } else {
                Err(format!("{value:?} is not a host name"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(body: &str) -> anyhow::Result<Vec<Record>> {
        let file = ConfigFile::from_str("s.toml", format!("[dns-failover]\n{body}"));
        let config: Config = file.section_or_default("dns-failover")?;
        records(&file, &config)
    }

    const GOOD: &str = r#"
[[dns-failover.record]]
name = "App.Example.com."
zone = "example.com"
type = "A"
provider = "powerdns"
primary = ["192.0.2.11", "192.0.2.10"]
backup = ["198.51.100.20"]
check = "http://192.0.2.10/health"
failure-threshold = 2
"#;

    #[test]
    fn a_good_record_is_normalised() {
        let r = &load(GOOD).expect("valid")[0];
        assert_eq!(r.name, "app.example.com");
        assert_eq!(r.primary, vec!["192.0.2.10", "192.0.2.11"]);
        assert_eq!(r.thresholds, Thresholds { failures: 2, successes: 3 });
        assert_eq!(r.side_of(&["192.0.2.11".into(), "192.0.2.10".into()]), Side::Primary);
        assert_eq!(r.side_of(&["198.51.100.20".into()]), Side::Backup);
        assert_eq!(r.side_of(&["192.0.2.10".into()]), Side::Other);
    }

    #[test]
    fn bad_records_name_the_line_and_the_problem() {
        let cases = [
            (GOOD.replace("192.0.2.11", "192.0.2.300"), "not an IPv4 address"),
            (GOOD.replace("zone = \"example.com\"", "zone = \"example.org\""), "not inside zone"),
            (GOOD.replace("http://192.0.2.10/health", "http://app.example.com/health"), "goes through the record"),
            (GOOD.replace("http://192.0.2.10/health", "ftp://192.0.2.10/"), "http://, https:// or tcp://"),
            (GOOD.replace("[\"198.51.100.20\"]", "[\"192.0.2.10\", \"192.0.2.11\"]"), "nothing to switch"),
            (GOOD.replace("\"A\"", "\"MX\""), "unknown variant"),
            (format!("{GOOD}{GOOD}"), "listed twice"),
        ];
        for (body, want) in cases {
            let e = load(&body).expect_err(want);
            let msg = format!("{e:#}");
            assert!(msg.starts_with("s.toml:") && msg.contains(want), "{want}: {msg}");
            assert_eq!(standby_common::exit::code_of(&e), standby_common::Code::Usage);
        }
    }
}
