//! The drill, step by step, in the order of the story: smoke-test the live app, the watchers
//! start, acknowledged writes, the power cut, detection, the DNS switch (proved with `dig`),
//! promotion through scripts/failover.sh, the primary's return and `rejoin`, failback, and the
//! report with its timeline. The first failed step ends the drill (later steps depend on it).

use std::process::Output;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use standby_common::pg::ConnectOptions;

use super::fleet::Load;
use super::interrupted;
use super::sandbox::{Sandbox, APP_RECORD, DB_RECORD, PRIMARY_IP, STANDBY_IP};
use super::summary::{Step, Summary};

/// Longest wait for any one event (detection, a switch, a promotion).
const WAIT: Duration = Duration::from_secs(30);
/// Acknowledged commits written on the primary before the power cut.
const ROWS: i32 = 200;

const SUITE: &str = r#"[[check]]
name = "health through nginx"
path = "/health"
expect = { status = 200, body-contains = "ok", max-latency = "1s" }

[[check]]
name = "app answers JSON"
path = "/json"
expect = { json = [{ pointer = "/status", equals = "ok" }] }
capture = { app = { json = "/name" } }

[[check]]
name = "home page names the live colour"
path = "/"
expect = { body-contains = "hello from {{app}}" }
"#;

struct Drill {
    sb: Sandbox,
    summary: Summary,
    json: bool,
    cut: Option<Instant>,
    /// The app colours the power cut stopped (started again when power is back).
    stopped_apps: Vec<usize>,
}

type StepFn = fn(&mut Drill) -> anyhow::Result<String>;

const STEPS: &[(&str, StepFn)] = &[
    ("nightly-backup.sh: run + verify", backup),
    ("smoke-test the live app", smoke),
    ("deploy.sh: release 2 under load", deploy),
    ("monitor and dns-failover watching", watch),
    ("acknowledged writes on the primary", writes),
    ("power cut at the primary site", power_cut),
    ("downtime-monitor records DOWN", detect),
    ("dns-failover: app + db to standby", dns_switch),
    ("failover.sh promotes; writes work", promote),
    ("primary back; rejoin", rejoin),
    ("dns-failover fails the app back", failback),
    ("downtime-monitor report + timeline", report),
];

pub fn run(json: bool, bin_dir: std::path::PathBuf) -> anyhow::Result<Summary> {
    let started = Instant::now();
    let sb = match Sandbox::start(bin_dir) {
        Ok(sb) => sb,
        Err(e) => {
            let mut summary = Summary::default();
            summary.steps.push(Step {
                name: "start the sandbox".into(),
                ok: false,
                duration_s: started.elapsed().as_secs_f64(),
                detail: format!("{e:#}"),
            });
            return Ok(summary);
        }
    };
    let mut drill = Drill { sb, summary: Summary::default(), json, cut: None, stopped_apps: Vec::new() };
    drill.summary.steps.push(Step {
        name: "start the sandbox".into(),
        ok: true,
        duration_s: started.elapsed().as_secs_f64(),
        detail: "nginx, 2 apps, PostgreSQL primary + sync standby, PowerDNS".into(),
    });
    drill.say(&format!(
        "== sandbox in {}: app through nginx at {}, PostgreSQL primary :{} + synchronous standby :{}, \
         PowerDNS :{} ({APP_RECORD}, {DB_RECORD})",
        drill.sb.dir.path().display(),
        drill.sb.nginx.url("/app/"),
        drill.sb.primary_db.port,
        drill.sb.standby_db.port,
        drill.sb.pdns.dns_port,
    ));
    for (name, f) in STEPS {
        if interrupted() {
            break;
        }
        drill.say(&format!("\n== {name}"));
        let t = Instant::now();
        let result = f(&mut drill);
        let duration_s = t.elapsed().as_secs_f64();
        let (ok, detail) = match result {
            Ok(detail) => (true, detail),
            Err(e) => (false, format!("{e:#}").replace('\n', " | ")),
        };
        drill.say(&format!("-> {} ({duration_s:.2} s): {detail}", if ok { "ok" } else { "FAILED" }));
        drill.summary.steps.push(Step { name: (*name).into(), ok, duration_s, detail });
        if !ok {
            break;
        }
    }
    Ok(std::mem::take(&mut drill.summary))
}

impl Drill {
    /// The narrative: stdout, or stderr with `--json` (stdout's last line is the summary).
    fn say(&self, text: &str) {
        if self.json {
            eprintln!("{text}");
        } else {
            println!("{text}");
        }
    }

    /// Show a command a user would type and what it answered.
    fn show(&self, shown: &str, out: &Output) {
        let mut text = format!("$ {shown}   # exit {}", out.status.code().unwrap_or(-1));
        for stream in [&out.stdout, &out.stderr] {
            let s = String::from_utf8_lossy(stream);
            for line in s.lines().take(14) {
                text.push_str("\n    ");
                text.push_str(line);
            }
        }
        self.say(&text);
    }

    fn standby_tool(&self, tool: &str, args: &[&str]) -> anyhow::Result<Output> {
        let out = self.sb.tool(&self.sb.standby_site, tool, args)?;
        self.show(&format!("{tool} {}", args.join(" ")), &out);
        Ok(out)
    }

    fn since_cut(&self) -> f64 {
        self.cut.map_or(0.0, |c| c.elapsed().as_secs_f64())
    }
}

/// Polls `done` every 50 ms until it holds, `WAIT` passes or Ctrl-C.
fn wait_for(what: &str, mut done: impl FnMut() -> bool) -> anyhow::Result<()> {
    let deadline = Instant::now() + WAIT;
    while !done() {
        if interrupted() {
            bail!("interrupted while waiting: {what}");
        }
        if Instant::now() > deadline {
            bail!("{what}: not within {WAIT:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

fn smoke(d: &mut Drill) -> anyhow::Result<String> {
    let suite = d.sb.out_dir.join("smoke.toml");
    std::fs::write(&suite, SUITE)?;
    let base = d.sb.nginx.url("/app");
    let suite_arg = suite.display().to_string();
    let out = d.standby_tool("smoke-test", &[&suite_arg, "--base-url", &base])?;
    if code(&out) != 0 {
        bail!("smoke-test exited {}", code(&out));
    }
    Ok(format!("3 checks passed through nginx at {base}"))
}

fn watch(d: &mut Drill) -> anyhow::Result<String> {
    d.sb.daemon(true, "downtime-monitor", &[])?;
    d.sb.daemon(true, "dns-failover", &[])?;
    d.say("$ downtime-monitor watch &   # every 200 ms, DOWN after 2 failures\n$ dns-failover watch &       # every 200 ms, switch after 3 failures");
    let sb = &d.sb;
    wait_for("downtime-monitor sees every target UP", || {
        sb.tool(&sb.standby_site, "downtime-monitor", &["status", "-q"]).is_ok_and(|o| code(&o) == 0)
    })?;
    d.standby_tool("downtime-monitor", &["status"])?;
    let out = d.standby_tool("replica-promote", &["check"])?;
    if code(&out) != 0 {
        bail!("replica-promote check exited {}: the pair is not healthy", code(&out));
    }
    let answers = (d.sb.dig(APP_RECORD), d.sb.dig(DB_RECORD));
    d.say(&format!("$ dig {APP_RECORD} {DB_RECORD}   # {:?} {:?}", answers.0, answers.1));
    if answers.0 != [PRIMARY_IP] || answers.1 != [PRIMARY_IP] {
        bail!("the records do not point at the primary: {answers:?}");
    }
    Ok("every target UP, replication healthy, both records on the primary".into())
}

fn writes(d: &mut Drill) -> anyhow::Result<String> {
    let conn = ConnectOptions::parse(&d.sb.primary_db.conninfo())?.connect_blocking()?;
    conn.batch_execute("create table drill (id int primary key, at timestamptz not null default now())")?;
    for id in 0..ROWS {
        conn.execute("insert into drill (id) values ($1)", &[&id])?;
    }
    drop(conn);
    // Records the primary's position: promote's loss estimate is measured against it.
    let out = d.standby_tool("replica-promote", &["status", "-q"])?;
    if code(&out) != 0 {
        bail!("replica-promote status exited {}", code(&out));
    }
    Ok(format!("{ROWS} commits, each acknowledged by the synchronous standby"))
}

fn power_cut(d: &mut Drill) -> anyhow::Result<String> {
    d.stopped_apps = d.sb.fleet.stop_all();
    d.sb.primary_db.stop_immediate();
    d.cut = Some(Instant::now());
    d.say("the primary site's app and PostgreSQL are killed (SIGKILL); nginx answers 502");
    Ok("app and PostgreSQL on the primary site killed".into())
}

fn detect(d: &mut Drill) -> anyhow::Result<String> {
    let sb = &d.sb;
    wait_for("downtime-monitor status exits 1 (a target DOWN)", || {
        sb.tool(&sb.standby_site, "downtime-monitor", &["status", "-q"]).is_ok_and(|o| code(&o) == 1)
    })?;
    let detect_s = d.since_cut();
    d.summary.detect_s = Some(detect_s);
    d.standby_tool("downtime-monitor", &["status"])?;
    Ok(format!("DOWN recorded {detect_s:.2} s after the cut"))
}

fn dns_switch(d: &mut Drill) -> anyhow::Result<String> {
    let sb = &d.sb;
    wait_for("dig shows both records on the standby", || {
        sb.dig(APP_RECORD) == [STANDBY_IP] && sb.dig(DB_RECORD) == [STANDBY_IP]
    })?;
    let dns_s = d.since_cut();
    d.summary.dns_switch_s = Some(dns_s);
    for record in [APP_RECORD, DB_RECORD] {
        let answers = d.sb.dig(record);
        d.say(&format!("$ dig +short @127.0.0.1 -p {} {record} A   # {}", d.sb.pdns.dns_port, answers.join(" ")));
    }
    Ok(format!("both records answer {STANDBY_IP} {dns_s:.2} s after the cut"))
}

fn promote(d: &mut Drill) -> anyhow::Result<String> {
    let deadline = Instant::now() + WAIT;
    let promoted = loop {
        if interrupted() {
            bail!("interrupted");
        }
        let out = d.sb.script(&d.sb.standby_site, "failover.sh", &["--json"])?;
        if code(&out) == 0 && !d.sb.standby_db.is_in_recovery().unwrap_or(true) {
            d.show("scripts/failover.sh --json", &out);
            break out;
        }
        if Instant::now() > deadline {
            d.show("scripts/failover.sh --json", &out);
            bail!("the standby was not promoted within {WAIT:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let conn = ConnectOptions::parse(&d.sb.standby_db.conninfo())?.connect_blocking()?;
    conn.execute("insert into drill (id) values ($1)", &[&ROWS])?;
    let writable_s = d.since_cut();
    d.summary.db_writable_s = Some(writable_s);
    let count: i64 = conn.query_value("select count(*) from drill where id < $1", &[&ROWS])?;
    drop(conn);
    let doc = last_json(&promoted).context("replica-promote promote --json printed no JSON")?;
    let loss = doc["estimated_loss_bytes"].as_u64();
    let rpo = match (loss, doc["synchronous"].as_bool()) {
        (Some(b), _) => b,
        (None, Some(true)) => 0,
        (None, _) => bail!("replica-promote gave no loss estimate: {doc}"),
    };
    d.summary.rpo_bytes = Some(rpo);
    d.summary.rows_lost = Some(i64::from(ROWS) - count);
    Ok(format!(
        "timeline {} -> {}, a write succeeded {writable_s:.2} s after the cut; {count} of {ROWS} rows there, \
         estimated loss {rpo} bytes",
        doc["old_timeline"], doc["new_timeline"]
    ))
}

fn rejoin(d: &mut Drill) -> anyhow::Result<String> {
    d.sb.fleet.start_again(&d.stopped_apps)?;
    d.say("the primary site has power again: its app serves; PostgreSQL stays down until rejoin");
    let out = d.sb.tool(&d.sb.primary_site, "replica-promote", &["rejoin"])?;
    d.show("replica-promote rejoin   # on the primary site", &out);
    if code(&out) != 0 {
        bail!("replica-promote rejoin exited {}", code(&out));
    }
    let sb = &d.sb;
    wait_for("the old primary streams from the new one", || {
        sb.standby_db.psql("select count(*) from pg_stat_replication where state = 'streaming'").is_ok_and(|n| n == "1")
    })?;
    let out = d.sb.tool(&d.sb.primary_site, "replica-promote", &["check"])?;
    d.show("replica-promote check   # on the primary site", &out);
    if code(&out) != 0 {
        bail!("replica-promote check exited {} after the rejoin", code(&out));
    }
    Ok("the old primary is a streaming standby of the new one".into())
}

fn failback(d: &mut Drill) -> anyhow::Result<String> {
    // `watch` holds dns-failover's lock; a manual failback is done with it stopped.
    d.sb.stop_daemon("dns-failover");
    d.say("$ kill -TERM <dns-failover watch>   # failback = \"manual\": switch by hand");
    let out = d.standby_tool("dns-failover", &["switch", "--to", "primary", "--record", APP_RECORD])?;
    if code(&out) != 0 {
        bail!("dns-failover switch exited {}", code(&out));
    }
    let (app, db) = (d.sb.dig(APP_RECORD), d.sb.dig(DB_RECORD));
    d.say(&format!("$ dig {APP_RECORD} {DB_RECORD}   # {app:?} {db:?}"));
    if app != [PRIMARY_IP] || db != [STANDBY_IP] {
        bail!("expected the app on the primary and the db on the new primary: {app:?} {db:?}");
    }
    let sb = &d.sb;
    wait_for("downtime-monitor sees every target UP again", || {
        sb.tool(&sb.standby_site, "downtime-monitor", &["status", "-q"]).is_ok_and(|o| code(&o) == 0)
    })?;
    d.standby_tool("downtime-monitor", &["status"])?;
    Ok(format!("{APP_RECORD} back on {PRIMARY_IP}; {DB_RECORD} stays on the new primary {STANDBY_IP}"))
}

fn report(d: &mut Drill) -> anyhow::Result<String> {
    d.sb.stop_daemon("downtime-monitor");
    let out = d.standby_tool("downtime-monitor", &["report", "--since", "1h"])?;
    if code(&out) > 1 {
        bail!("downtime-monitor report exited {}", code(&out));
    }
    let mut written = Vec::new();
    for format in ["html", "svg"] {
        let path = d.sb.out_dir.join(format!("timeline.{format}"));
        let path_arg = path.display().to_string();
        let out =
            d.standby_tool("downtime-monitor", &["report", "--since", "1h", "--format", format, "-o", &path_arg])?;
        if code(&out) > 1 || !path.is_file() {
            bail!("downtime-monitor report --format {format} exited {} and wrote no {path_arg}", code(&out));
        }
        written.push(path);
    }
    d.summary.timeline = written.first().cloned();
    Ok(format!("timeline in {}", written.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(" and ")))
}

fn deploy(d: &mut Drill) -> anyhow::Result<String> {
    let load = Load::start(d.sb.nginx.port, "/app/", 4);
    let sent = load.sent.clone();
    wait_for("the load reaches nginx", || sent.load(std::sync::atomic::Ordering::SeqCst) > 20)?;
    let out = d.sb.script(&d.sb.primary_site, "deploy.sh", &["2"]);
    let (requests, failed) = load.finish();
    let out = out?;
    d.show("scripts/deploy.sh 2   # under load: 4 clients, a connection per request", &out);
    if code(&out) != 0 {
        bail!("deploy.sh exited {}", code(&out));
    }
    let home = super::fleet::get(d.sb.nginx.port, "/app/").unwrap_or_default();
    d.say(&format!("$ curl {}   # {}", d.sb.nginx.url("/app/"), home.lines().last().unwrap_or_default()));
    if !home.contains(&super::fleet::body("green", "2")) {
        bail!("nginx does not serve green's release 2: {home:?}");
    }
    d.summary.deploy_requests = Some(requests);
    d.summary.deploy_failed_requests = Some(failed);
    Ok(format!("green serves release 2; {failed} of {requests} requests through nginx failed"))
}

/// The last JSON document a command printed on stdout (several may follow each other).
fn last_json(out: &Output) -> Option<serde_json::Value> {
    let text = String::from_utf8_lossy(&out.stdout);
    let start = text.find('{')?;
    serde_json::Deserializer::from_str(&text[start..]).into_iter::<serde_json::Value>().map_while(Result::ok).last()
}

fn backup(d: &mut Drill) -> anyhow::Result<String> {
    let out = d.sb.tool(&d.sb.primary_site, "backup-sync", &["init"])?;
    d.show("backup-sync init   # once", &out);
    if code(&out) != 0 {
        bail!("backup-sync init exited {}", code(&out));
    }
    let out = d.sb.script(&d.sb.primary_site, "nightly-backup.sh", &["--json"])?;
    d.show("scripts/nightly-backup.sh --json", &out);
    if code(&out) != 0 {
        bail!("nightly-backup.sh exited {}", code(&out));
    }
    let doc = last_json(&out).context("backup-sync verify --json printed no JSON")?;
    let files = doc["files"].as_u64().context("verify's JSON has no `files`")?;
    d.summary.backup_verified_files = Some(files);
    Ok(format!("snapshot of the app's files and a PostgreSQL dump; the test restore verified {files} files"))
}
