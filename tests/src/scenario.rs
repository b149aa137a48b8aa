//! Pieces of the cross-tool scenarios that both a test and a benchmark run: a replica-promote
//! config for one "machine" of a harness pair, a dns-failover config for one PowerDNS record,
//! and a writer that commits numbered rows and remembers the last acknowledged one (to count
//! what a failover lost).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::postgres::{pg_bin, server_user_name, PgServer};
use crate::PowerDns;

/// A replica-promote config in `dir/name` for the machine running `local`, `peer` the other.
pub fn replica_config(dir: &Path, name: &str, local: &PgServer, peer: &PgServer) -> anyhow::Result<PathBuf> {
    let bin_dir = pg_bin("pg_ctl").parent().map(Path::to_path_buf).unwrap_or_default();
    let text = format!(
        "[replica-promote]\nlocal = {:?}\npeer = {:?}\ndata-dir = {:?}\nbin-dir = {:?}\nsystem-user = {:?}\nconnect-timeout = \"3s\"\n",
        local.conninfo(),
        peer.conninfo(),
        local.data_dir.display().to_string(),
        bin_dir.display().to_string(),
        server_user_name(),
    );
    let path = dir.join(name);
    std::fs::write(&path, text)?;
    Ok(path)
}

/// One A record on PowerDNS switched between two addresses.
pub struct DnsRecord<'a> {
    pub name: &'a str,
    pub zone: &'a str,
    pub primary_ip: &'a str,
    pub backup_ip: &'a str,
    /// Health URLs of the primary and of the backup.
    pub check: String,
    pub backup_check: String,
}

/// A dns-failover config in `dir/dns.toml` for `record` on `pdns`, its API key read from the
/// env var `key_env`; `settings` are lines of the `[dns-failover]` section (thresholds, timeout).
pub fn dns_config(
    dir: &Path,
    pdns: &PowerDns,
    record: &DnsRecord,
    key_env: &str,
    settings: &str,
) -> anyhow::Result<PathBuf> {
    let text = format!(
        r#"[dns-failover]
{settings}

[dns-failover.powerdns]
api-url = "http://127.0.0.1:{api}"
api-key-env = "{key_env}"

[[dns-failover.record]]
name = "{name}"
zone = "{zone}"
type = "A"
provider = "powerdns"
primary = ["{primary}"]
backup = ["{backup}"]
check = "{check}"
backup-check = "{backup_check}"
"#,
        api = pdns.api_port,
        name = record.name,
        zone = record.zone,
        primary = record.primary_ip,
        backup = record.backup_ip,
        check = record.check,
        backup_check = record.backup_check,
    );
    let path = dir.join("dns.toml");
    std::fs::write(&path, text)?;
    Ok(path)
}

/// Commits `INSERT INTO load (id) VALUES (n)` for n = 1, 2, … on its own thread until stopped
/// or a commit fails; `acked` is the last id whose commit returned. The table must exist.
pub struct Writer {
    stop: Arc<AtomicBool>,
    acked: Arc<AtomicI64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Writer {
    pub fn start(conninfo: String) -> Writer {
        let (stop, acked) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicI64::new(0)));
        let (s, a) = (stop.clone(), acked.clone());
        let thread = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
            rt.block_on(async {
                let Ok(opts) = standby_common::pg::ConnectOptions::parse(&conninfo) else { return };
                let Ok(c) = opts.timeout(Duration::from_secs(3)).connect().await else { return };
                let mut id = 0i64;
                while !s.load(Ordering::SeqCst) {
                    id += 1;
                    if c.execute("INSERT INTO load (id) VALUES ($1)", &[&id]).await.is_err() {
                        return;
                    }
                    a.store(id, Ordering::SeqCst);
                }
            });
        });
        Writer { stop, acked, thread: Some(thread) }
    }

    /// The last acknowledged id so far.
    pub fn acked(&self) -> i64 {
        self.acked.load(Ordering::SeqCst)
    }

    /// Stop writing; the last acknowledged id.
    pub fn stop(mut self) -> i64 {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.acked()
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// `(count, max id)` of the `load` table on `node`.
pub fn rows(node: &PgServer) -> anyhow::Result<(i64, i64)> {
    let row = node.psql("SELECT count(*), coalesce(max(id), 0) FROM load")?;
    let (c, m) = row.split_once('|').ok_or_else(|| anyhow::anyhow!("unexpected psql output {row:?}"))?;
    Ok((c.trim().parse()?, m.trim().parse()?))
}

/// `program` with none of the caller's `STANDBY_*`, `PG*` or `RUST_LOG` settings, as a user's
/// shell would start it.
pub fn clean_command(program: impl AsRef<std::ffi::OsStr>) -> std::process::Command {
    let mut cmd = std::process::Command::new(program);
    for (key, _) in std::env::vars_os() {
        let k = key.to_string_lossy();
        if k.starts_with("STANDBY_") || k.starts_with("PG") || k == "RUST_LOG" {
            cmd.env_remove(&key);
        }
    }
    cmd
}

/// A downtime-monitor config in `dir/monitor.toml` watching the UPS `apc` at `nut_address`
/// (`low-runtime = "15m"`, thresholds 1) whose `command` notifier runs `command` on
/// battery-low and power-restored.
pub fn ups_monitor_config(dir: &Path, nut_address: &str, command: &[String]) -> anyhow::Result<PathBuf> {
    let path = dir.join("monitor.toml");
    std::fs::write(
        &path,
        format!(
            "[downtime-monitor]\nvantage = \"db-a\"\n\n[[downtime-monitor.target]]\nname = \"mains\"\nkind = \"ups\"\naddress = \"{nut_address}\"\nups = \"apc\"\ninterval = \"10s\"\ntimeout = \"3s\"\nfailure-threshold = 1\nrecovery-threshold = 1\nlow-runtime = \"15m\"\n\n[[notify]]\nkind = \"command\"\ncommand = {}\nevents = [\"battery-low\", \"power-restored\"]\n",
            serde_json::to_string(command)?,
        ),
    )?;
    Ok(path)
}

/// `env K=V... bash SCRIPT`: a notifier command that runs `script` with `env`.
pub fn script_command(env: &[(&str, String)], script: &Path) -> Vec<String> {
    let mut argv = vec!["env".to_string()];
    argv.extend(env.iter().map(|(k, v)| format!("{k}={v}")));
    argv.extend(["bash".to_string(), script.display().to_string()]);
    argv
}
