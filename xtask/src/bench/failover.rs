//! `failover`: `dns-failover watch` (interval 1 s, thresholds 3) against a real PowerDNS:
//! the time from killing the primary app to `dig` at the PowerDNS server answering the
//! backup's address, and back after the app returns, 10 runs. No managed service can run
//! here, so the anchors are modelled from their documented defaults: Route 53 failover
//! routing (a check every 30 s, 3 failures: 90 s) and Cloudflare Load Balancing (60 s).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use standby_e2e::scenario::{dns_config, DnsRecord};
use standby_e2e::{AppBackend, PowerDns};

use super::{release_bin, Row};

const RUNS: usize = 10;
const PRIMARY: &str = "192.0.2.10";
const BACKUP: &str = "198.51.100.20";
const ANCHOR: &str = "Route 53 failover defaults (30 s x 3 = 90 s), modelled; Cloudflare LB checks every 60 s";

struct Watch(Child);

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn run() -> anyhow::Result<Vec<Row>> {
    let pdns = PowerDns::start()?;
    pdns.create_zone("example.com", &[("app", "A", PRIMARY, 1)])?;
    let mut primary = AppBackend::start("primary")?;
    let backup = AppBackend::start("backup")?;
    let dir = tempfile::tempdir()?;
    let record = DnsRecord {
        name: "app.example.com",
        zone: "example.com",
        primary_ip: PRIMARY,
        backup_ip: BACKUP,
        check: primary.url("/health"),
        backup_check: backup.url("/health"),
    };
    let settings = "failure-threshold = 3\nrecovery-threshold = 3\ninterval = \"1s\"\ntimeout = \"1s\"";
    let config = dns_config(dir.path(), &pdns, &record, "BENCH_PDNS_KEY", settings)?;
    let child = Command::new(release_bin("dns-failover"))
        .arg("--config")
        .arg(&config)
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .args(["watch", "-q"])
        .env("BENCH_PDNS_KEY", &pdns.api_key)
        .env("STANDBY_RUN_DIR", dir.path().join("run"))
        .stdout(Stdio::null())
        .spawn()
        .context("start dns-failover watch")?;
    let _watch = Watch(child);
    std::thread::sleep(Duration::from_secs(2));

    let answer_is = |want: &str, limit: Duration| -> anyhow::Result<Duration> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if pdns.dig("app.example.com", "A")? == vec![want.to_string()] {
                return Ok(start.elapsed());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        bail!("dig never answered {want} within {limit:?}")
    };
    let mut over = Vec::new();
    let mut back = Vec::new();
    for _ in 0..RUNS {
        answer_is(PRIMARY, Duration::from_secs(30))?;
        primary.stop();
        over.push(answer_is(BACKUP, Duration::from_secs(30))?.as_secs_f64());
        primary.start_again()?;
        back.push(answer_is(PRIMARY, Duration::from_secs(30))?.as_secs_f64());
        // Let the streak settle on the primary before the next kill.
        std::thread::sleep(Duration::from_millis(1500));
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let max = over.iter().copied().fold(0.0, f64::max);
    Ok(vec![
        Row::at_most("failover", "time_to_failover_s", median(&mut over), Some(90.0), ANCHOR, 3.0, RUNS),
        Row::at_most("failover", "time_to_failover_max_s", max, Some(90.0), ANCHOR, 3.5, RUNS),
        Row::at_most("failover", "time_to_failback_s", median(&mut back), Some(90.0), ANCHOR, 3.5, RUNS),
    ])
}
