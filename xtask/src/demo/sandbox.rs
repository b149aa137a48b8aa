//! The drill's sandbox: two "sites" on loopback. The primary site runs the app (behind nginx)
//! and the PostgreSQL primary; the standby site runs a second app, the synchronous standby,
//! and the watchers (downtime-monitor, dns-failover). PowerDNS holds `app.drill.test` and
//! `db.drill.test`. Each site has its own config file and state dir in one temp dir; every
//! server and daemon is stopped and the temp dir removed on drop.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use anyhow::{bail, Context};
use standby_e2e::postgres::{pg_bin, server_user_name, start_primary_with_standby};
use standby_e2e::process::wait_until;
use standby_e2e::{AppBackend, Nginx, NginxOptions, PgServer, PowerDns, ServerProcess};

use super::fleet::Fleet;

use crate::run::root;

pub const ZONE: &str = "drill.test";
pub const APP_RECORD: &str = "app.drill.test";
pub const DB_RECORD: &str = "db.drill.test";
/// What the records hold while the primary site is live, and after a failover.
pub const PRIMARY_IP: &str = "192.0.2.10";
pub const STANDBY_IP: &str = "198.51.100.20";
const PDNS_KEY_ENV: &str = "DRILL_PDNS_API_KEY";

/// One machine's view: its config file and state dir.
pub struct Site {
    pub config: PathBuf,
    pub state: PathBuf,
    /// The site's `STANDBY_RUN_DIR` (its host-wide switching lock): each site is a host of its
    /// own, and the drill never takes the lock of the machine it runs on.
    pub run: PathBuf,
}

/// Everything the drill started. Fields drop in order: daemons first, then servers, then the
/// temp dir.
pub struct Sandbox {
    pub daemons: Vec<ServerProcess>,
    pub nginx: Nginx,
    pub fleet: Fleet,
    pub standby_app: AppBackend,
    pub primary_db: PgServer,
    pub standby_db: PgServer,
    pub pdns: PowerDns,
    pub primary_site: Site,
    pub standby_site: Site,
    pub bin_dir: PathBuf,
    /// Kept across runs (the timeline and the smoke suite): `target/demo`.
    pub out_dir: PathBuf,
    pub dir: tempfile::TempDir,
}

/// Where cargo put the tools (honours `CARGO_TARGET_DIR`).
pub fn bin_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root().join("target"));
    let target = if target.is_absolute() { target } else { root().join(target) };
    target.join("debug")
}

impl Sandbox {
    pub fn start(bin_dir: PathBuf) -> anyhow::Result<Sandbox> {
        let dir = tempfile::Builder::new().prefix("standby-drill-").tempdir().context("temp dir")?;
        let (primary_db, standby_db) =
            start_primary_with_standby().context("PostgreSQL primary + standby (run scripts/install-deps.sh first)")?;
        make_synchronous(&primary_db)?;
        let fleet = Fleet::start().context("the primary site's app (blue and green)")?;
        let standby_app = AppBackend::start("standby").context("the standby site's app")?;
        let nginx = Nginx::start(NginxOptions { upstream: Some(fleet.ports[0]), ..Default::default() })
            .context("nginx (run scripts/install-deps.sh first)")?;
        let pdns = PowerDns::start().context("PowerDNS (run scripts/install-deps.sh first)")?;
        pdns.create_zone(ZONE, &[("app", "A", PRIMARY_IP, 60), ("db", "A", PRIMARY_IP, 60)])?;
        let out_dir = root().join("target/demo");
        std::fs::create_dir_all(&out_dir)?;
        let site = |name: &'static str| Site {
            config: dir.path().join(format!("{name}.toml")),
            state: dir.path().join(format!("{name}-state")),
            run: dir.path().join(format!("{name}-run")),
        };
        let sandbox = Sandbox {
            daemons: Vec::new(),
            primary_site: site("primary-site"),
            standby_site: site("standby-site"),
            nginx,
            fleet,
            standby_app,
            primary_db,
            standby_db,
            pdns,
            bin_dir,
            out_dir,
            dir,
        };
        sandbox.write_configs()?;
        Ok(sandbox)
    }

    fn write_configs(&self) -> anyhow::Result<()> {
        let bin_dir = pg_bin("pg_ctl").parent().map(Path::to_path_buf).unwrap_or_default();
        let promote = |local: &PgServer, peer: &PgServer| {
            format!(
                "[replica-promote]\nlocal = {:?}\npeer = {:?}\ndata-dir = {:?}\nbin-dir = {:?}\nsystem-user = {:?}\n\
                 connect-timeout = \"1s\"\n",
                local.conninfo(),
                peer.conninfo(),
                local.data_dir.display().to_string(),
                bin_dir.display().to_string(),
                server_user_name(),
            )
        };
        let suite = self.out_dir.join("smoke.toml");
        let ctl = format!("http://127.0.0.1:{}", self.fleet.control_port);
        let deploy = format!(
            "[blue-green-deploy]\n\
             upstream-file = {upstream:?}\n\
             nginx = [\"nginx\", \"-p\", {prefix:?}, \"-c\", {conf:?}]\n\
             start = \"curl -fsS {ctl}/start/{{color}}/{{version}}\"\n\
             stop = \"curl -fsS {ctl}/stop/{{color}}\"\n\
             health-path = \"/health\"\n\
             health-timeout = \"10s\"\n\
             smoke-suite = {suite:?}\n\
             public-url = \"{public}\"\n\
             color-header = \"X-Backend\"\n\
             watch = \"2s\"\n\
             drain = \"1s\"\n\n\
             [blue-green-deploy.blue]\naddress = \"127.0.0.1:{b}\"\n\
             [blue-green-deploy.green]\naddress = \"127.0.0.1:{g}\"\n\n",
            upstream = self.nginx.upstream_path().display().to_string(),
            prefix = self.nginx.prefix.display().to_string(),
            conf = self.nginx.conf_path().display().to_string(),
            suite = suite.display().to_string(),
            public = self.nginx.url("/app"),
            b = self.fleet.ports[0],
            g = self.fleet.ports[1],
        );
        let data = self.dir.path().join("app-data");
        std::fs::create_dir_all(data.join("uploads"))?;
        for (name, text) in [("settings.ini", "colour = blue\n"), ("uploads/report.csv", "day,visits\n1,42\n")] {
            std::fs::write(data.join(name), text)?;
        }
        let password = self.dir.path().join("backup.pw");
        std::fs::write(&password, "drill only: correct horse battery staple\n")?;
        std::fs::set_permissions(&password, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
        let backup = format!(
            "[backup-sync]\nrepository = {repo:?}\npassword-file = {pw:?}\nsources = [{data:?}]\n\n\
             [[backup-sync.dump]]\nkind = \"postgres\"\nconninfo = {conninfo:?}\ndatabase = \"postgres\"\n\n",
            repo = self.dir.path().join("backup-repo").display().to_string(),
            pw = password.display().to_string(),
            data = data.display().to_string(),
            conninfo = format!("host=127.0.0.1 port={} user=postgres", self.primary_db.port),
        );
        std::fs::write(&self.primary_site.config, backup + &deploy + &promote(&self.primary_db, &self.standby_db))?;
        let watchers = format!(
            r#"[downtime-monitor]
vantage = "standby-site"

[[downtime-monitor.target]]
name = "app"
kind = "http"
address = "{app_health}"
interval = "200ms"
timeout = "500ms"
failure-threshold = 2
recovery-threshold = 2

[[downtime-monitor.target]]
name = "db"
kind = "postgres"
address = "host=127.0.0.1 port={db_port} user=postgres dbname=postgres"
interval = "200ms"
timeout = "500ms"
failure-threshold = 2
recovery-threshold = 2

[dns-failover]
failure-threshold = 3
recovery-threshold = 3
failback = "manual"
interval = "200ms"
timeout = "500ms"

[dns-failover.powerdns]
api-url = "http://127.0.0.1:{pdns_api_port}"
api-key-env = "{PDNS_KEY_ENV}"

[[dns-failover.record]]
name = "{APP_RECORD}"
zone = "{ZONE}"
type = "A"
provider = "powerdns"
primary = ["{PRIMARY_IP}"]
backup = ["{STANDBY_IP}"]
check = "{app_health}"
backup-check = "{standby_health}"

[[dns-failover.record]]
name = "{DB_RECORD}"
zone = "{ZONE}"
type = "A"
provider = "powerdns"
primary = ["{PRIMARY_IP}"]
backup = ["{STANDBY_IP}"]
check = "tcp://127.0.0.1:{db_port}"
backup-check = "tcp://127.0.0.1:{standby_port}"

"#,
            app_health = self.nginx.url("/app/health"),
            standby_health = self.standby_app.url("/health"),
            db_port = self.primary_db.port,
            standby_port = self.standby_db.port,
            pdns_api_port = self.pdns.api_port,
        );
        std::fs::write(&self.standby_site.config, watchers + &promote(&self.standby_db, &self.primary_db))?;
        Ok(())
    }

    /// A command for one of our tools as a user on `site` runs it: its config and state dir
    /// in the environment (so the chain scripts see them too), our binaries first on PATH,
    /// no inherited `STANDBY_*`/`PG*` settings.
    pub fn command(&self, site: &Site, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new(program);
        for (key, _) in std::env::vars_os() {
            let k = key.to_string_lossy();
            if k.starts_with("STANDBY_") || k.starts_with("PG") || k == "RUST_LOG" {
                cmd.env_remove(&key);
            }
        }
        let path = std::env::var_os("PATH").unwrap_or_default();
        let mut paths = vec![self.bin_dir.clone()];
        // pg_dump for backup-sync's dumps (Debian keeps it off PATH, in the versioned dir).
        paths.extend(pg_bin("pg_dump").parent().map(Path::to_path_buf));
        paths.extend(std::env::split_paths(&path));
        if let Ok(joined) = std::env::join_paths(paths) {
            cmd.env("PATH", joined);
        }
        cmd.env("STANDBY_CONFIG", &site.config).env("STANDBY_STATE_DIR", &site.state);
        cmd.env("STANDBY_RUN_DIR", &site.run);
        cmd.env(PDNS_KEY_ENV, &self.pdns.api_key);
        cmd
    }

    /// `tool args...` on `site`, to the end, output captured.
    pub fn tool(&self, site: &Site, tool: &str, args: &[&str]) -> anyhow::Result<Output> {
        let mut cmd = self.command(site, self.bin_dir.join(tool));
        cmd.args(args);
        cmd.output().with_context(|| format!("cannot run {tool} (was it built?)"))
    }

    /// A chain script from scripts/ on `site`.
    pub fn script(&self, site: &Site, name: &str, args: &[&str]) -> anyhow::Result<Output> {
        let mut cmd = self.command(site, "bash");
        cmd.arg(root().join("scripts").join(name)).args(args);
        cmd.output().with_context(|| format!("cannot run scripts/{name}"))
    }

    /// `tool watch` on `site` as a daemon (log in the sandbox), stopped with SIGTERM on drop.
    pub fn daemon(&mut self, site_is_standby: bool, tool: &str, args: &[&str]) -> anyhow::Result<()> {
        let site = if site_is_standby { &self.standby_site } else { &self.primary_site };
        let mut cmd = self.command(site, self.bin_dir.join(tool));
        cmd.arg("watch").args(args);
        let log = self.dir.path().join(format!("{tool}-watch.log"));
        let process = ServerProcess::spawn(cmd, tool, log)?;
        self.daemons.push(process);
        Ok(())
    }

    /// Stops the daemon named `tool` (SIGTERM, it finishes its round).
    pub fn stop_daemon(&mut self, tool: &str) {
        self.daemons.retain_mut(|d| {
            if d.name() == tool {
                d.stop();
                false
            } else {
                true
            }
        });
    }

    pub fn dig(&self, name: &str) -> Vec<String> {
        self.pdns.dig(name, "A").unwrap_or_default()
    }
}

/// Synchronous replication: a commit is acknowledged only once the standby has it.
fn make_synchronous(primary: &PgServer) -> anyhow::Result<()> {
    primary.psql("alter system set synchronous_standby_names = '*'")?;
    primary.psql("alter system set synchronous_commit = 'on'")?;
    primary.psql("select pg_reload_conf()")?;
    let sync = wait_until(Duration::from_secs(30), || {
        primary.psql("select sync_state from pg_stat_replication").is_ok_and(|s| s == "sync")
    });
    if !sync {
        bail!("the standby did not become synchronous");
    }
    Ok(())
}
