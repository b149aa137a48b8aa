//! PowerDNS authoritative with the sqlite3 backend and its HTTP API, checked with `dig`.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context};
use serde_json::json;

use crate::http_client::{self, Response};
use crate::ports::{free_port, retry_on_clash};
use crate::process::{port_open, run_checked, run_output, ServerProcess};
use crate::util;

const SCHEMA: &str = "/usr/share/pdns-backend-sqlite3/schema/schema.sqlite3.sql";
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A running `pdns_server` (foreground, no guardian). Dropping it stops the server and
/// removes its config dir and database.
pub struct PowerDns {
    /// DNS port (UDP and TCP) on 127.0.0.1.
    pub dns_port: u16,
    /// HTTP API / webserver port on 127.0.0.1.
    pub api_port: u16,
    /// Value for the `X-API-Key` header.
    pub api_key: String,
    process: Option<ServerProcess>,
    dir: Option<tempfile::TempDir>,
}

impl PowerDns {
    /// Creates the sqlite3 database from the packaged schema, writes pdns.conf and starts
    /// `pdns_server --config-dir=DIR`; returns when the API answers and DNS accepts TCP.
    pub fn start() -> anyhow::Result<PowerDns> {
        let dir = util::temp_dir("pdns")?;
        let db = dir.path().join("pdns.sqlite3");
        if !std::path::Path::new(SCHEMA).is_file() {
            bail!("{SCHEMA} is missing: install pdns-server and pdns-backend-sqlite3");
        }
        let mut sqlite = Command::new("sqlite3");
        sqlite.arg(&db).arg(format!(".read {SCHEMA}"));
        run_checked(sqlite, Duration::from_secs(30)).context("create the pdns database")?;

        let mut pdns = PowerDns {
            dns_port: 0,
            api_port: 0,
            api_key: format!("standby-e2e-{:016x}", fastrand::u64(..)),
            process: None,
            dir: Some(dir),
        };
        retry_on_clash("pdns_server", "in use", || {
            pdns.dns_port = free_port();
            pdns.api_port = free_port();
            pdns.spawn()
        })?;
        Ok(pdns)
    }

    fn spawn(&mut self) -> anyhow::Result<()> {
        let dir = self.dir.as_ref().map(|d| d.path().to_path_buf()).context("pdns temp dir is gone")?;
        let conf = format!(
            "launch=gsqlite3\n\
             gsqlite3-database={db}\n\
             local-address=127.0.0.1\n\
             local-port={dns}\n\
             api=yes\n\
             api-key={key}\n\
             webserver=yes\n\
             webserver-address=127.0.0.1\n\
             webserver-port={api}\n\
             webserver-allow-from=127.0.0.0/8\n\
             cache-ttl=0\n\
             negquery-cache-ttl=0\n\
             query-cache-ttl=0\n\
             zone-cache-refresh-interval=0\n\
             socket-dir={dir}\n\
             guardian=no\n\
             daemon=no\n\
             setuid=\n\
             setgid=\n",
            db = dir.join("pdns.sqlite3").display(),
            dns = self.dns_port,
            key = self.api_key,
            api = self.api_port,
            dir = dir.display(),
        );
        std::fs::write(dir.join("pdns.conf"), conf).context("write pdns.conf")?;
        let mut cmd = Command::new("pdns_server");
        cmd.arg(format!("--config-dir={}", dir.display()));
        let mut process = ServerProcess::spawn(cmd, "pdns_server", dir.join("pdns.log"))?;
        let server = format!("{}/servers/localhost", self.api_url());
        let (key, dns_port) = (self.api_key.clone(), self.dns_port);
        process.wait_ready(START_TIMEOUT, || {
            port_open(dns_port)
                && http_client::request("GET", &server, &[("X-API-Key", &key)], None).is_ok_and(|r| r.status == 200)
        })?;
        self.process = Some(process);
        Ok(())
    }

    /// `http://127.0.0.1:PORT/api/v1`.
    pub fn api_url(&self) -> String {
        format!("http://127.0.0.1:{}/api/v1", self.api_port)
    }

    /// PID of the server while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().map(ServerProcess::pid)
    }

    /// Stops the server (SIGTERM, then SIGKILL); the temp dir stays until drop.
    pub fn stop(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.stop();
        }
    }

    /// One API call with the API key; `path` is relative to [`PowerDns::api_url`]
    /// (`/servers/localhost/zones`). Fails on a non-2xx answer, with its body.
    pub fn api(&self, method: &str, path: &str, body: Option<&serde_json::Value>) -> anyhow::Result<Response> {
        let url = format!("{}{path}", self.api_url());
        let body = body.map(serde_json::Value::to_string);
        let mut headers = vec![("X-API-Key", self.api_key.as_str())];
        if body.is_some() {
            headers.push(("Content-Type", "application/json"));
        }
        let response = http_client::request(method, &url, &headers, body.as_deref().map(str::as_bytes))?;
        if !(200..300).contains(&response.status) {
            bail!("{method} {url}: HTTP {}: {}", response.status, response.text());
        }
        Ok(response)
    }

    /// Creates a Native zone with `ns1.<zone>` as name server and these records
    /// `(name, type, content, ttl)`. Names may be absolute (`app.example.com[.]`), relative
    /// to the zone (`app`), or `@`. Records with the same name and type form one RRset.
    pub fn create_zone(&self, zone: &str, records: &[(&str, &str, &str, u32)]) -> anyhow::Result<()> {
        let zone = absolute(zone);
        let mut rrsets: BTreeMap<(String, String), (u32, Vec<String>)> = BTreeMap::new();
        for (name, rtype, content, ttl) in records {
            let entry = rrsets.entry((fqdn(name, &zone), rtype.to_ascii_uppercase())).or_insert((*ttl, Vec::new()));
            entry.1.push((*content).to_string());
        }
        let rrsets: Vec<serde_json::Value> =
            rrsets.into_iter().map(|((name, rtype), (ttl, contents))| rrset(&name, &rtype, ttl, &contents)).collect();
        let body = json!({
            "name": zone,
            "kind": "Native",
            "nameservers": [format!("ns1.{zone}")],
            "rrsets": rrsets,
        });
        self.api("POST", "/servers/localhost/zones", Some(&body)).with_context(|| format!("create zone {zone}"))?;
        Ok(())
    }

    /// Replaces one RRset through `PATCH .../zones/<zone>` with `"changetype": "REPLACE"`.
    pub fn replace_rrset(
        &self,
        zone: &str,
        name: &str,
        rtype: &str,
        contents: &[&str],
        ttl: u32,
    ) -> anyhow::Result<()> {
        let zone = absolute(zone);
        let contents: Vec<String> = contents.iter().map(|c| (*c).to_string()).collect();
        let mut set = rrset(&fqdn(name, &zone), &rtype.to_ascii_uppercase(), ttl, &contents);
        set["changetype"] = json!("REPLACE");
        let body = json!({ "rrsets": [set] });
        self.api("PATCH", &format!("/servers/localhost/zones/{zone}"), Some(&body))
            .with_context(|| format!("replace {name} {rtype} in {zone}"))?;
        Ok(())
    }

    /// `dig +short @127.0.0.1 -p PORT NAME TYPE`: the answers, one per line.
    pub fn dig(&self, name: &str, rtype: &str) -> anyhow::Result<Vec<String>> {
        let mut cmd = Command::new("dig");
        cmd.args(["+short", "+time=2", "+tries=2", "@127.0.0.1", "-p"])
            .arg(self.dns_port.to_string())
            .args([name, rtype]);
        let output = run_output(cmd, Duration::from_secs(15))?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() {
            bail!(
                "dig {name} {rtype} on port {} failed ({}): {stdout}{}",
                self.dns_port,
                output.status,
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(stdout.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with(";;")).map(String::from).collect())
    }
}

impl Drop for PowerDns {
    fn drop(&mut self) {
        self.stop();
        drop(self.dir.take());
    }
}

fn rrset(name: &str, rtype: &str, ttl: u32, contents: &[String]) -> serde_json::Value {
    let records: Vec<serde_json::Value> = contents.iter().map(|c| json!({ "content": c, "disabled": false })).collect();
    json!({ "name": name, "type": rtype, "ttl": ttl, "records": records })
}

/// `example.com` → `example.com.`
fn absolute(name: &str) -> String {
    if name.ends_with('.') {
        name.to_string()
    } else {
        format!("{name}.")
    }
}

/// A record name made absolute inside `zone` (which ends with a dot).
fn fqdn(name: &str, zone: &str) -> String {
    let bare_zone = zone.trim_end_matches('.');
    if name.is_empty() || name == "@" {
        zone.to_string()
    } else if name.ends_with('.') {
        name.to_string()
    } else if name == bare_zone || name.ends_with(&format!(".{bare_zone}")) {
        format!("{name}.")
    } else {
        format!("{name}.{zone}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(fqdn("@", "example.com."), "example.com.");
        assert_eq!(fqdn("app", "example.com."), "app.example.com.");
        assert_eq!(fqdn("app.example.com", "example.com."), "app.example.com.");
        assert_eq!(fqdn("app.example.com.", "example.com."), "app.example.com.");
        assert_eq!(absolute("example.com"), "example.com.");
    }
}
