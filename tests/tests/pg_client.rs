//! standby-common's PostgreSQL client (`standby_common::pg`) against the harness's real
//! PostgreSQL 15: queries async and blocking, passwords (wrong ones, `PGPASSFILE`), TLS
//! `prefer` against a server without TLS, and the failures that must exit 4 without hanging:
//! a closed port and a listener that accepts and never answers.

#![allow(clippy::unwrap_used)] // a panic is a failed test

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use standby_common::exit::{code_of, Code};
use standby_common::pg::{self, ConnectOptions};
use standby_common::secret::Secret;

fn block<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
}

fn options(conninfo: &str) -> ConnectOptions {
    ConnectOptions::parse(conninfo).unwrap().timeout(Duration::from_secs(10))
}

#[test]
fn connect_and_query_async_and_blocking() {
    let pg = standby_e2e::start_primary().unwrap();
    let opts = options(&pg.conninfo());
    let server = format!("127.0.0.1:{}", pg.port);
    assert_eq!(opts.server(), server);

    block(async {
        let c = opts.connect().await.unwrap();
        let n: i32 = c.query_value("SELECT $1::int + 1", &[&41i32]).await.unwrap();
        assert_eq!(n, 42);
        c.batch_execute("CREATE TABLE t (id bigint, name text)").await.unwrap();
        let changed = c.execute("INSERT INTO t VALUES ($1, $2), ($3, $4)", &[&1i64, &"a", &2i64, &"b"]).await.unwrap();
        assert_eq!(changed, 2);
        let rows = c.query("SELECT id, name FROM t ORDER BY id", &[]).await.unwrap();
        let got: Vec<(i64, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
        assert_eq!(got, vec![(1, "a".to_string()), (2, "b".to_string())]);
        assert!(c.query_opt("SELECT 1 FROM t WHERE id = 3", &[]).await.unwrap().is_none());

        let err = c.query("SELECT * FROM no_such_table", &[]).await.unwrap_err();
        assert_eq!(code_of(&err), Code::Failed, "a failed query exits 1: {err:#}");
        let text = format!("{err:#}");
        assert!(text.contains(&server) && text.contains("no_such_table"), "{text}");
        assert_eq!(pg::db_error(&err).unwrap().code(), &pg::SqlState::UNDEFINED_TABLE);
        let err = c.query_value::<bool, _>("SELECT 'x'::text", &[]).await.unwrap_err();
        assert_eq!(code_of(&err), Code::Failed, "a wrongly typed answer is a failed query: {err:#}");
        c.close().await;
    });

    // Blocking, from a thread with no runtime.
    let c = opts.connect_blocking().unwrap();
    let in_recovery: bool = c.query_value("SELECT pg_is_in_recovery()", &[]).unwrap();
    assert!(!in_recovery);
    let stmt = c.prepare("SELECT count(*) FROM t WHERE id >= $1").unwrap();
    assert_eq!(c.query_one(&stmt, &[&1i64]).unwrap().get::<_, i64>(0), 2);
    let err = c.execute("INSERT INTO t VALUES ('not a number')", &[]).unwrap_err();
    assert_eq!(code_of(&err), Code::Failed);
    drop(c);

    // Blocking, called (and dropped) inside a runtime's async task: no panic.
    block(async {
        let c = opts.connect_blocking().unwrap();
        assert_eq!(c.query_value::<i64, _>("SELECT count(*) FROM t", &[]).unwrap(), 2);
        drop(c);
    });
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let n = rt
        .block_on(async {
            let o = opts.clone();
            tokio::task::spawn_blocking(move || o.connect_blocking()?.query_value::<i64, _>("SELECT 7::bigint", &[]))
                .await
        })
        .unwrap()
        .unwrap();
    assert_eq!(n, 7);
    let n = rt
        .block_on(async {
            let o = opts.clone();
            tokio::spawn(async move { o.connect_blocking()?.query_value::<i64, _>("SELECT 8::bigint", &[]) }).await
        })
        .unwrap()
        .unwrap();
    assert_eq!(n, 8, "inside an async task on a multi-thread runtime");
}

/// A role `pwuser` that must log in with a password (scram) from 127.0.0.1.
fn require_password(pg: &standby_e2e::PgServer, password: &str) -> String {
    pg.psql(&format!("CREATE ROLE pwuser LOGIN PASSWORD '{password}'")).unwrap();
    let hba = pg.data_dir.join("pg_hba.conf");
    let old = std::fs::read_to_string(&hba).unwrap();
    std::fs::write(&hba, format!("host all pwuser 127.0.0.1/32 scram-sha-256\n{old}")).unwrap();
    pg.psql("SELECT pg_reload_conf()").unwrap();
    let conninfo = format!("host=127.0.0.1 port={} user=pwuser dbname=postgres", pg.port);
    let no_password = ConnectOptions::parse(&conninfo).unwrap().passfile(Some("/nonexistent".into()));
    let asks = standby_e2e::process::wait_until(Duration::from_secs(10), || block(no_password.connect()).is_err());
    assert!(asks, "the server asks pwuser for a password after the reload");
    conninfo
}

#[test]
fn passwords_wrong_ones_are_refused_unprinted_and_pgpassfile_is_honoured() {
    let pg = standby_e2e::start_primary().unwrap();
    let conninfo = require_password(&pg, "right-pw-7");
    let server = format!("127.0.0.1:{}", pg.port);
    let nofile = || options(&conninfo).passfile(Some("/nonexistent".into()));

    let wrong = "wrong-pw-hunter2";
    let err = block(nofile().password(Some(Secret::new(wrong))).connect()).unwrap_err();
    let text = format!("{err:#} {err:?}");
    assert!(!text.contains(wrong), "the password is never printed: {text}");
    assert!(text.contains(&server) && text.contains("password authentication failed"), "{text}");
    assert_eq!(code_of(&err), Code::Usage, "a wrong password is a configuration error: {err:#}");
    let err = block(nofile().try_connect()).unwrap_err();
    assert_eq!(err.failure(), pg::Failure::Config, "no password at all: {err}");

    let user = |opts: ConnectOptions| {
        block(async move {
            let c = opts.connect().await?;
            c.query_value::<String, _>("SELECT current_user::text", &[]).await
        })
    };
    assert_eq!(user(nofile().password(Some(Secret::new("right-pw-7")))).unwrap(), "pwuser");

    // PGPASSFILE (no other test here reads it: they log in as postgres, with trust).
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pgpass");
    std::fs::write(
        &file,
        format!("# test\n127.0.0.1:{}:otherdb:pwuser:nope\n127.0.0.1:{}:*:pwuser:right-pw-7\n", pg.port, pg.port),
    )
    .unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::env::set_var("PGPASSFILE", &file);
    assert_eq!(user(options(&conninfo)).unwrap(), "pwuser");
    // libpq's rule: a password file that group or others can read is ignored.
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = block(options(&conninfo).try_connect()).unwrap_err();
    assert_eq!(err.failure(), pg::Failure::Config, "{err}");
    // A secret given explicitly wins over the file.
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let err = block(options(&conninfo).password(Some(Secret::new(wrong))).connect()).unwrap_err();
    assert!(format!("{err:#}").contains("password authentication failed"), "{err:#}");
    std::env::remove_var("PGPASSFILE");
}

#[test]
fn an_unreachable_port_fails_at_once_with_code_4() {
    let port = standby_e2e::ports::free_port();
    let conninfo = format!("host=127.0.0.1 port={port} user=postgres dbname=postgres password=hunter2");
    // A long timeout: the refusal must come from the closed port, not from the timeout.
    let opts = ConnectOptions::parse(&conninfo).unwrap().timeout(Duration::from_secs(60));
    let err = block(opts.try_connect()).unwrap_err();
    assert_eq!(err.failure(), pg::Failure::Unreachable, "{err}");
    let err = block(opts.connect()).unwrap_err();
    assert_eq!(code_of(&err), Code::Unavailable);
    let text = format!("{err:#}");
    assert!(text.contains(&format!("127.0.0.1:{port}")) && !text.contains("hunter2"), "{text}");
    let err = opts.connect_blocking().unwrap_err();
    assert_eq!(code_of(&err), Code::Unavailable, "{err:#}");

    // downtime-monitor's history store keeps the code through its own context.
    let location = downtime_monitor::store::Location::Postgres {
        conninfo: format!("postgres://mon@127.0.0.1:{port}/history"),
        password: Some(Secret::new("hunter2")),
        ca_file: None,
    };
    let err = downtime_monitor::store::Store::connect(&location, "test").err().unwrap();
    assert_eq!(code_of(&err), Code::Unavailable, "{err:#}");
    assert!(!format!("{err:#} {err:?}").contains("hunter2"));
}

#[test]
fn a_server_that_accepts_and_never_answers_times_out_naming_the_timeout() {
    // The kernel completes the TCP handshake (backlog); nothing ever reads or answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let opts = ConnectOptions::parse(&format!("host=127.0.0.1 port={port} user=postgres"))
        .unwrap()
        .timeout(Duration::from_millis(1500));
    let err = block(opts.try_connect()).unwrap_err();
    assert_eq!(err.failure(), pg::Failure::Timeout, "{err}");
    let err = block(opts.connect()).unwrap_err();
    assert_eq!(code_of(&err), Code::Unavailable);
    let text = format!("{err:#}");
    assert!(text.contains("no answer within 1s 500ms") && text.contains(&format!("127.0.0.1:{port}")), "{text}");
    // Blocking, with and without a runtime around it.
    let err = opts.connect_blocking().unwrap_err();
    assert_eq!(code_of(&err), Code::Unavailable, "{err:#}");
    let err = block(async { opts.connect_blocking() }).unwrap_err();
    assert_eq!(code_of(&err), Code::Unavailable, "{err:#}");
    drop(listener);
}

#[test]
fn tls_prefer_falls_back_on_a_server_without_tls_and_require_refuses() {
    let pg = standby_e2e::start_primary().unwrap();
    assert_eq!(pg.psql("SHOW ssl").unwrap(), "off");
    let conninfo = |mode: &str| format!("host=127.0.0.1 port={} user=postgres dbname=postgres sslmode={mode}", pg.port);
    let tls_in_use = |opts: ConnectOptions| {
        block(async move {
            let c = opts.connect().await?;
            c.query_value::<bool, _>("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &[]).await
        })
    };
    assert!(!tls_in_use(options(&conninfo("prefer"))).unwrap(), "plain connection after the server declined TLS");
    assert!(!tls_in_use(options(&pg.conninfo())).unwrap(), "prefer is the default");
    let err = block(options(&conninfo("require")).try_connect()).unwrap_err();
    assert_eq!(err.failure(), pg::Failure::Tls, "{err}");
    assert_eq!(err.code(), Code::Unavailable);
}
