//! replica-promote against the harness's real PostgreSQL 15 primary + streaming standby
//! (run as an unprivileged user; the tool's `system-user` names it): status, check,
//! promote, rejoin, switchover, driven through the binary as a user runs it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use standby_common::pg::ConnectOptions;
use standby_e2e::ports::free_port;
use standby_e2e::postgres::{pg_bin, server_user_name, start_primary_with_standby, PgServer};
use standby_e2e::process::wait_until;

const WAIT: Duration = Duration::from_secs(60);

const BIN: &str = env!("CARGO_BIN_EXE_replica-promote");

/// A config file and a state dir for one scenario: `local` is the node this "machine" runs.
struct Site {
    dir: tempfile::TempDir,
    config: PathBuf,
}

impl Site {
    fn new(local: &PgServer, peer: &PgServer, extra: &str) -> Site {
        Site::with_peer(local, &peer.conninfo(), extra)
    }

    fn with_peer(local: &PgServer, peer: &str, extra: &str) -> Site {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("standby.toml");
        let bin_dir = pg_bin("pg_ctl").parent().map(Path::to_path_buf).unwrap_or_default();
        let text = format!(
            "[replica-promote]\nlocal = {:?}\npeer = {:?}\ndata-dir = {:?}\nbin-dir = {:?}\nsystem-user = {:?}\n\
             connect-timeout = \"3s\"\n{extra}\n",
            local.conninfo(),
            peer,
            local.data_dir.display().to_string(),
            bin_dir.display().to_string(),
            server_user_name(),
        );
        std::fs::write(&config, text).expect("write config");
        Site { dir, config }
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run replica-promote")
    }

    /// The command `run` runs, for a test to add environment.
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.arg("--config").arg(&self.config).arg("--state-dir").arg(self.dir.path().join("state")).args(args);
        for (key, _) in std::env::vars_os() {
            let k = key.to_string_lossy();
            if k.starts_with("STANDBY_") || k.starts_with("PG") || k == "RUST_LOG" {
                cmd.env_remove(&key);
            }
        }
        cmd.env("STANDBY_RUN_DIR", self.dir.path().join("run"));
        cmd
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn show(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status.code(),
        text(&out.stdout),
        text(&out.stderr)
    )
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", show(out)))
}

#[test]
fn status_and_check_on_a_healthy_pair() {
    let (primary, standby) = start_primary_with_standby().expect("pair");
    let site = Site::new(&standby, &primary, "");
    let out = site.run(&["status", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let doc = json(&out);
    assert_eq!(doc["nodes"][0]["place"], "local");
    assert_eq!(doc["nodes"][0]["role"], "standby");
    assert_eq!(doc["nodes"][0]["receiver"]["status"], "streaming");
    assert_eq!(doc["nodes"][1]["role"], "primary");
    assert_eq!(doc["nodes"][1]["slots"][0]["name"], "s1");
    assert_eq!(doc["nodes"][1]["replicas"][0]["slot"], "s1");
    assert_eq!((doc["primary"].as_str(), doc["standby"].as_str()), (Some("peer"), Some("local")));
    assert!(doc["lag_bytes"].is_u64(), "{doc}");
    assert!(site.dir.path().join("state/last-primary.json").is_file(), "the primary's position is recorded");

    let out = site.run(&["status"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(text(&out.stdout).contains("OK"), "{}", show(&out));

    let out = site.run(&["check", "-q"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert_eq!(text(&out.stdout), "");
}

#[test]
fn check_fails_with_one_line_when_the_standby_lags_or_stops() {
    let (primary, mut standby) = start_primary_with_standby().expect("pair");
    let site = Site::new(&primary, &standby, "max-lag-bytes = \"16kB\"\n");
    standby.psql("select pg_wal_replay_pause()").expect("pause replay");
    primary
        .psql("create table filler as select g, repeat('x', 100) as pad from generate_series(1, 5000) g")
        .expect("write");
    let out = site.run(&["check"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let err = text(&out.stderr);
    assert!(err.contains("behind (max-lag-bytes 16kB)") && err.trim().lines().count() == 1, "{}", show(&out));
    // The flag beats the file.
    let out = site.run(&["check", "--max-lag-bytes", "1GB"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));

    standby.stop();
    let out = site.run(&["check"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(text(&out.stderr).contains("peer") && text(&out.stderr).contains("unreachable"), "{}", show(&out));
    let out = site.run(&["status", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let doc = json(&out);
    assert_eq!(doc["nodes"][1]["reachable"], false, "{doc}");
    assert_eq!(doc["nodes"][0]["role"], "primary", "{doc}");
}

#[test]
fn promote_is_refused_while_the_old_primary_answers_by_any_path() {
    let (primary, standby) = start_primary_with_standby().expect("pair");
    let site = Site::new(&standby, &primary, "");
    let out = site.run(&["promote"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        text(&out.stderr).contains("still answers") && text(&out.stderr).contains("as a primary"),
        "{}",
        show(&out)
    );
    assert!(standby.is_in_recovery().expect("asks"), "nothing changed");

    // The private link is down (the peer's address is silent) but its port answers through
    // another path: still refused.
    let dead = format!("host=127.0.0.1 port={} user=postgres dbname=postgres", free_port());
    let checks = format!("peer-checks = [\"tcp://127.0.0.1:{}\"]\nfence = \"exit 3\"\n", primary.port);
    let site = Site::with_peer(&standby, &dead, &checks);
    let out = site.run(&["promote", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let doc = json(&out);
    assert_eq!(doc["sightings"][0]["answers"], false, "{doc}");
    assert_eq!(doc["sightings"][1]["answers"], true, "{doc}");
    assert_eq!(doc["changed"], false, "{doc}");

    // --force needs the fence to succeed; this one fails.
    let out = site.run(&["promote", "--force"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(text(&out.stderr).contains("fence command failed"), "{}", show(&out));
    assert!(standby.is_in_recovery().expect("asks"), "nothing changed");

    // Unreachable local node before anything changed: exit 4.
    let site = Site::with_peer(&standby, &dead, "");
    let mut cfg = std::fs::read_to_string(&site.config).expect("read");
    cfg = cfg.replace(&format!("port={} ", standby.port), &format!("port={} ", free_port()));
    std::fs::write(&site.config, cfg).expect("write");
    let out = site.run(&["promote"]);
    assert_eq!(out.status.code(), Some(4), "{}", show(&out));
}

/// Synchronous replication: every acknowledged commit survives the primary's death.
fn make_synchronous(primary: &PgServer) {
    primary
        .psql("alter system set synchronous_standby_names = '*'")
        .and_then(|_| primary.psql("alter system set synchronous_commit = 'on'"))
        .and_then(|_| primary.psql("select pg_reload_conf()"))
        .expect("synchronous");
    assert!(
        wait_until(WAIT, || primary.psql("select sync_state from pg_stat_replication").is_ok_and(|s| s == "sync")),
        "the standby becomes synchronous"
    );
}

#[test]
fn promote_after_the_primary_dies_then_rejoin_it_as_a_standby() {
    let (mut primary, standby) = start_primary_with_standby().expect("pair");
    make_synchronous(&primary);
    let site = Site::new(&standby, &primary, "");
    let hook_file = site.dir.path().join("hook.env");
    let hooks = format!("post-promote = [\"env | grep ^REPLICA_PROMOTE_ > {}\"]\n", hook_file.display());
    let site = Site { config: rewrite(&site.config, &hooks), ..site };
    assert_eq!(site.run(&["status", "-q"]).status.code(), Some(0), "records the primary's position");

    // Acknowledged commits, one transaction each.
    let writer = ConnectOptions::parse(&primary.conninfo()).expect("conninfo").connect_blocking().expect("connect");
    writer.batch_execute("create table acked (id int primary key)").expect("create");
    for id in 0..300 {
        writer.execute("insert into acked values ($1)", &[&id]).expect("insert acknowledged");
    }
    drop(writer);
    primary.stop_immediate();

    let out = site.run(&["promote", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let doc = json(&out);
    assert_eq!(doc["promoted"], true, "{doc}");
    assert_eq!(doc["synchronous"], true, "{doc}");
    let old = doc["old_timeline"].as_u64().expect("old timeline");
    assert_eq!(doc["new_timeline"].as_u64(), Some(old + 1), "{doc}");
    assert!(!standby.is_in_recovery().expect("asks"));
    assert_eq!(standby.psql("select count(*) from acked").expect("count"), "300", "every acknowledged row");
    standby.psql("insert into acked values (1000)").expect("writable");
    let env = std::fs::read_to_string(&hook_file).expect("the hook ran");
    assert!(env.contains(&format!("REPLICA_PROMOTE_TIMELINE={}", old + 1)), "{env}");
    assert!(env.contains(&format!("REPLICA_PROMOTE_SERVER=127.0.0.1:{}", standby.port)), "{env}");

    // Promoting again is refused: it is a primary now.
    let out = site.run(&["promote"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));

    // The old primary comes back as a standby of the new one.
    let back = Site::new(&primary, &standby, "");
    let rejoined = back.run(&["rejoin"]);
    assert_eq!(rejoined.status.code(), Some(0), "{}", show(&rejoined));
    assert!(primary.is_in_recovery().expect("the old primary answers"), "it is a standby now");
    assert!(
        wait_until(WAIT, || standby
            .psql("select count(*) from pg_stat_replication where state = 'streaming'")
            .is_ok_and(|n| n == "1")),
        "the old primary streams from the new one"
    );
    standby.psql("insert into acked values (2000)").expect("write on the new primary");
    let replayed =
        wait_until(WAIT, || primary.psql("select count(*) from acked where id = 2000").is_ok_and(|n| n == "1"));
    assert!(
        replayed,
        "the rejoined standby replays new writes: {}\n{:?}\n{}\n{}",
        show(&rejoined),
        primary.psql("select count(*) from acked where id = 2000"),
        show(&back.run(&["status"])),
        std::fs::read_to_string(primary.data_dir.join("replica-promote-start.log")).unwrap_or_default()
    );
    let out = back.run(&["check"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
}

fn rewrite(config: &Path, extra: &str) -> PathBuf {
    let mut text = std::fs::read_to_string(config).expect("read config");
    text.push_str(extra);
    std::fs::write(config, text).expect("write config");
    config.to_path_buf()
}

#[test]
fn switchover_and_back_loses_nothing() {
    let (primary, standby) = start_primary_with_standby().expect("pair");
    primary.psql("create table kept (id int primary key)").expect("create");
    primary.psql("insert into kept select generate_series(1, 1000)").expect("insert");

    let on_a = Site::new(&primary, &standby, "");
    let out = on_a.run(&["switchover", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert_eq!(json(&out)["done"], true);
    assert!(!standby.is_in_recovery().expect("asks") && primary.is_in_recovery().expect("asks"));
    assert_eq!(standby.psql("select count(*) from kept").expect("count"), "1000");
    standby.psql("insert into kept select generate_series(1001, 2000)").expect("write on the new primary");

    let on_b = Site::new(&standby, &primary, "");
    let out = on_b.run(&["switchover"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(!primary.is_in_recovery().expect("asks") && standby.is_in_recovery().expect("asks"));
    assert_eq!(primary.psql("select count(*) from kept").expect("count"), "2000", "zero rows lost");
    primary.psql("insert into kept values (5000)").expect("writable again");
    assert!(
        wait_until(WAIT, || standby.psql("select count(*) from kept").is_ok_and(|n| n == "2001")),
        "and streams to the other again"
    );
    assert_eq!(on_a.run(&["check"]).status.code(), Some(0));
}

/// Runs `sql` with psql on `server` and waits for it at most `limit`: a commit waiting for a
/// synchronous standby that will never come is not covered by `statement_timeout` (the wait
/// happens after the statement, at commit), so the process is killed at the deadline and
/// that is an error.
fn write_within(server: &PgServer, sql: &str, limit: Duration) -> Result<(), String> {
    let mut child = Command::new(pg_bin("psql"))
        .args(["-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", &server.port.to_string()])
        .args(["-U", "postgres", "-d", "postgres", "-c", sql])
        .env("PGOPTIONS", "-c statement_timeout=10s")
        .env("PGCONNECT_TIMEOUT", "5")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("psql: {e}"))?;
    let mut status = None;
    let done = wait_until(limit, || {
        status = child.try_wait().ok().flatten();
        status.is_some()
    });
    if !done {
        let _ = child.kill();
        let _ = child.wait();
        return Err(format!("{sql:?} on port {} did not return within {limit:?}", server.port));
    }
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut err);
    }
    match status {
        Some(s) if s.success() && !err.contains("WARNING") => Ok(()),
        _ => Err(format!("{sql:?} on port {}: {status:?} {err}", server.port)),
    }
}

#[test]
fn promote_clears_a_leftover_synchronous_standby_names_and_rejoin_restores_it() {
    let (mut primary, standby) = start_primary_with_standby().expect("pair");
    make_synchronous(&primary);
    // The standby's config says synchronous too (as after a switchover, or a config copied
    // from the primary): promoted with no standby, every commit would wait forever.
    standby
        .psql("alter system set synchronous_standby_names = '*'")
        .and_then(|_| standby.psql("select pg_reload_conf()"))
        .expect("standby config");
    primary.psql("create table t (id int)").expect("create");
    let site = Site::new(&standby, &primary, "");
    primary.stop_immediate();

    let out = site.run(&["promote", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let doc = json(&out);
    assert_eq!(doc["cleared_synchronous_standby_names"], "*", "{doc}");
    write_within(&standby, "insert into t values (1)", Duration::from_secs(30)).expect("a write on the new primary");
    assert_eq!(standby.psql("show synchronous_standby_names").expect("show"), "");
    let out = site.run(&["promote"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));

    // The old primary (its config: synchronous) rejoins: synchronous mode comes back on.
    let back = Site::new(&primary, &standby, "");
    let out = back.run(&["rejoin", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let doc = json(&out);
    assert_eq!(doc["synchronous"]["synchronous"], true, "{doc}");
    assert_eq!(doc["synchronous"]["names"], "*", "{doc}");
    assert_eq!(standby.psql("show synchronous_standby_names").expect("show"), "*");
    assert_eq!(standby.psql("select sync_state from pg_stat_replication").expect("ask"), "sync");
    write_within(&standby, "insert into t values (2)", Duration::from_secs(30)).expect("a synchronous write");
    // `synchronous_commit = on` waits for the standby's flush; its replay follows.
    assert!(
        wait_until(WAIT, || primary.psql("select count(*) from t").is_ok_and(|n| n == "2")),
        "the rejoined standby has the write"
    );
}

#[test]
fn every_acknowledged_write_under_load_survives_promote() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    let (mut primary, standby) = start_primary_with_standby().expect("pair");
    make_synchronous(&primary);
    primary.psql("create table load (id int primary key)").expect("create");
    let site = Site::new(&standby, &primary, "");
    assert_eq!(site.run(&["status", "-q"]).status.code(), Some(0), "records the primary's position");

    let acked = Arc::new(Mutex::new(Vec::<i32>::new()));
    let count = Arc::new(AtomicUsize::new(0));
    let writer = {
        let (acked, count) = (Arc::clone(&acked), Arc::clone(&count));
        let client = ConnectOptions::parse(&primary.conninfo()).expect("conninfo").connect_blocking().expect("connect");
        assert_eq!(client.query_value::<String, _>("show synchronous_commit", &[]).expect("show"), "on");
        std::thread::spawn(move || {
            for id in 0.. {
                if client.execute("insert into load values ($1)", &[&id]).is_err() {
                    return id;
                }
                acked.lock().expect("lock").push(id);
                count.fetch_add(1, Ordering::SeqCst);
            }
            unreachable!()
        })
    };
    assert!(wait_until(WAIT, || count.load(Ordering::SeqCst) >= 200), "the writer commits");
    primary.stop_immediate();
    let failed_at = writer.join().expect("writer");
    let acked = acked.lock().expect("lock").clone();
    assert!(acked.len() >= 200 && failed_at as usize == acked.len(), "{} acked, failed at {failed_at}", acked.len());

    let out = site.run(&["promote", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let doc = json(&out);
    assert_eq!(doc["synchronous"], true, "{doc}");
    let old = doc["old_timeline"].as_u64().expect("old timeline");
    assert_eq!(doc["new_timeline"].as_u64(), Some(old + 1), "{doc}");
    let present: std::collections::HashSet<i32> =
        standby.psql("select id from load").expect("read").lines().map(|l| l.parse().expect("an id")).collect();
    let missing: Vec<i32> = acked.iter().copied().filter(|id| !present.contains(id)).collect();
    assert!(missing.is_empty(), "acknowledged rows lost: {missing:?} of {}", acked.len());
    assert!(present.len() <= acked.len() + 1, "at most the one in-flight commit beyond the acknowledged");
    write_within(&standby, "insert into load values (-1)", Duration::from_secs(30)).expect("writable");
}

#[test]
fn promote_after_a_cut_mid_record_replays_what_can_be_and_succeeds() {
    // Asynchronous pair, big WAL records streaming when the primary dies: the standby often
    // holds the first part of a record whose end never arrives. Replay cannot reach the
    // received position then, and waiting for it would refuse a promotion that must happen.
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    let (mut primary, standby) = start_primary_with_standby().expect("pair");
    primary.psql("create table load (id int primary key, v text)").expect("create");
    primary.psql("alter table load alter column v set storage external").expect("no compression");
    let site = Site::new(&standby, &primary, "");
    assert_eq!(site.run(&["status", "-q"]).status.code(), Some(0), "records the primary's position");
    let count = Arc::new(AtomicUsize::new(0));
    let writer = {
        let count = Arc::clone(&count);
        let client = ConnectOptions::parse(&primary.conninfo()).expect("conninfo").connect_blocking().expect("connect");
        std::thread::spawn(move || {
            for id in 0.. {
                // 512 KiB of WAL per row: one logical message record, and the row's chunks.
                let emit = "select pg_logical_emit_message(false, 'load', repeat('m', 262144))";
                let insert = "insert into load values ($1, repeat('x', 262144))";
                if client.batch_execute(emit).is_err() || client.execute(insert, &[&id]).is_err() {
                    return;
                }
                count.fetch_add(1, Ordering::SeqCst);
            }
        })
    };
    assert!(wait_until(WAIT, || count.load(Ordering::SeqCst) >= 20), "the writer commits");
    primary.stop_immediate();
    writer.join().expect("writer");

    let out = site.run(&["promote", "--json", "--replay-timeout", "10s"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let doc = json(&out);
    assert_eq!(doc["promoted"], true, "{doc}");
    let (received, replayed) =
        (doc["received_lsn"].as_str().expect("received"), doc["replayed_lsn"].as_str().expect("replayed"));
    if received != replayed {
        let tail = doc["incomplete_tail_bytes"].as_u64().expect("an unreplayed tail is reported");
        assert!(tail > 0, "{doc}");
    }
    write_within(&standby, "insert into load values (-1, 'after')", Duration::from_secs(30)).expect("writable");
}

#[test]
fn async_loss_estimate_matches_the_real_gap() {
    let (mut primary, standby) = start_primary_with_standby().expect("pair");
    primary.psql("create table lost (id int, pad text)").expect("create");
    assert!(
        wait_until(WAIT, || standby.psql("select count(*) from lost").is_ok_and(|n| n == "0")),
        "the table reaches the standby"
    );
    // The standby stops receiving: its WAL receiver goes away.
    standby
        .psql("alter system set primary_conninfo = ''")
        .and_then(|_| standby.psql("select pg_reload_conf()"))
        .expect("stop the receiver");
    assert!(
        wait_until(WAIT, || standby.psql("select count(*) from pg_stat_wal_receiver").is_ok_and(|n| n == "0")),
        "the WAL receiver stops"
    );
    let writer = ConnectOptions::parse(&primary.conninfo()).expect("conninfo").connect_blocking().expect("connect");
    writer.batch_execute("set synchronous_commit = on").expect("local flush at commit");
    writer.batch_execute("insert into lost select g, repeat('x', 100) from generate_series(1, 2000) g").expect("write");
    drop(writer);

    let site = Site::new(&standby, &primary, "");
    let out = site.run(&["status", "--json"]);
    assert_eq!(out.status.code(), Some(1), "the standby does not stream: {}", show(&out));
    let doc = json(&out);
    let recorded = doc["nodes"][1]["current_lsn"].as_str().expect("primary's LSN").to_string();
    let final_lsn = primary.psql("select pg_current_wal_lsn()").expect("lsn");
    primary.stop_immediate();
    let replayed = standby.psql("select pg_last_wal_replay_lsn()").expect("replayed");
    let gap: u64 = standby
        .psql(&format!("select pg_wal_lsn_diff('{recorded}', '{replayed}')::int8"))
        .expect("diff")
        .parse()
        .expect("a number");
    let unseen: i64 = standby
        .psql(&format!("select pg_wal_lsn_diff('{final_lsn}', '{recorded}')::int8"))
        .expect("diff")
        .parse()
        .expect("a number");
    assert!(unseen >= 0, "status saw the primary before its last position");

    let out = site.run(&["promote", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let doc = json(&out);
    assert_eq!(doc["last_primary_lsn"], recorded.as_str(), "{doc}");
    assert_eq!(doc["replayed_lsn"], replayed.as_str(), "{doc}");
    assert_eq!(doc["synchronous"], false, "{doc}");
    assert!(gap > 2000 * 100, "the rows written are in the gap: {gap}");
    assert_eq!(doc["estimated_loss_bytes"].as_u64(), Some(gap), "{doc}");
    assert_eq!(standby.psql("select count(*) from lost").expect("count"), "0", "those rows are indeed lost");
    assert!(text(&out.stdout).is_empty() || !text(&out.stdout).contains("none acknowledged"));
}

#[test]
fn rejoin_without_pg_rewind_exits_4_before_changing_anything() {
    let (mut primary, standby) = start_primary_with_standby().expect("pair");
    primary.stop_immediate();
    standby.psql("select pg_promote(true, 60)").expect("promote");
    assert!(wait_until(WAIT, || standby.is_in_recovery().is_ok_and(|r| !r)), "promoted");

    // A bin-dir with every server program but pg_rewind, and no PATH entry that has it.
    let bin = tempfile::tempdir().expect("temp dir");
    for name in ["pg_ctl", "pg_controldata", "postgres"] {
        std::os::unix::fs::symlink(pg_bin(name), bin.path().join(name)).expect("symlink");
    }
    let path: Vec<String> = std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .filter(|d| !Path::new(d).join("pg_rewind").exists())
        .map(String::from)
        .collect();
    let back = Site::new(&primary, &standby, "");
    let config = std::fs::read_to_string(&back.config).expect("read config");
    let own_bin = format!("bin-dir = {:?}", bin.path().display().to_string());
    let config: Vec<String> =
        config.lines().map(|l| if l.starts_with("bin-dir") { own_bin.clone() } else { l.to_string() }).collect();
    std::fs::write(&back.config, config.join("\n")).expect("write config");
    let out = back.command(&["rejoin"]).env("PATH", path.join(":")).output().expect("run");
    assert_eq!(out.status.code(), Some(4), "{}", show(&out));
    assert!(text(&out.stderr).contains("pg_rewind"), "names the program: {}", show(&out));
    assert_eq!(standby.psql("select count(*) from pg_replication_slots").expect("slots"), "0", "no slot made");
    assert!(!primary.data_dir.join("standby.signal").exists(), "the old primary is untouched");

    // With the programs there, the same rejoin works from where it was left.
    let ok = Site::new(&primary, &standby, "");
    let out = ok.run(&["rejoin"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
}

#[test]
fn a_wrong_password_names_the_node_and_a_peer_that_rejects_us_still_blocks_promote() {
    let (primary, standby) = start_primary_with_standby().expect("pair");
    // A login with a password on the primary, by scram; everything else stays trust.
    primary.psql("create role app login superuser password 'right-horse-battery'").expect("role");
    let hba = primary.data_dir.join("pg_hba.conf");
    let old = std::fs::read_to_string(&hba).expect("read hba");
    std::fs::write(&hba, format!("host all app 127.0.0.1/32 scram-sha-256\n{old}")).expect("write hba");
    primary.psql("select pg_reload_conf()").expect("reload");
    let peer = format!("host=127.0.0.1 port={} user=app dbname=postgres", primary.port);
    let site = Site::with_peer(&standby, &peer, "password-env = \"RP_TEST_PASSWORD\"\n");

    let out = site.command(&["status"]).env("RP_TEST_PASSWORD", "right-horse-battery").output().expect("run");
    assert_eq!(out.status.code(), Some(0), "the right password works: {}", show(&out));

    let wrong = "wrong-staple-7731";
    let out = site.command(&["status", "--json"]).env("RP_TEST_PASSWORD", wrong).output().expect("run");
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let all = show(&out);
    assert!(!all.contains(wrong), "the password is never printed: {all}");
    let doc = json(&out);
    assert_eq!(doc["nodes"][1]["reachable"], false, "{doc}");
    let error = doc["nodes"][1]["error"].as_str().unwrap_or_default();
    assert!(
        error.contains(&format!("127.0.0.1:{}", primary.port)) && error.contains("password authentication failed"),
        "names the node and why: {doc}"
    );

    // The old primary rejects our password: it is alive, so promote is refused.
    let out = site.command(&["promote", "--json"]).env("RP_TEST_PASSWORD", wrong).output().expect("run");
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(!show(&out).contains(wrong), "{}", show(&out));
    assert_eq!(json(&out)["changed"], false);
    assert!(standby.is_in_recovery().expect("asks"), "nothing changed");
}
