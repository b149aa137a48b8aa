//! Proves that every server of the harness starts, works for real, and is gone after drop.

use std::process::Command;
use std::time::Duration;

use cloudflare::endpoints::dns::dns::{
    CreateDnsRecord, CreateDnsRecordParams, DeleteDnsRecord, DnsContent, ListDnsRecords, ListDnsRecordsParams,
    UpdateDnsRecord, UpdateDnsRecordParams,
};
use cloudflare::endpoints::zones::zone::{ListZones, ListZonesParams, ZoneDetails};
use cloudflare::framework::auth::Credentials;
use cloudflare::framework::client::async_api::Client;
use cloudflare::framework::client::ClientConfig;
use cloudflare::framework::response::ApiFailure;
use cloudflare::framework::Environment;
use standby_e2e::http_client;
use standby_e2e::process::{group_alive, pid_alive, wait_until, ServerProcess};
use standby_e2e::{start_primary_with_standby, tls, AppBackend, FakeCloudflare, Fault, Nginx, NginxOptions, PowerDns};

const WAIT: Duration = Duration::from_secs(10);

fn assert_gone(what: &str, pid: u32) {
    assert!(
        wait_until(Duration::from_secs(5), || !pid_alive(pid) && !group_alive(pid)),
        "{what} (pid {pid}) or a process of its group is still alive"
    );
}

#[test]
fn handles_can_be_shared_across_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<standby_e2e::PgServer>();
    send_sync::<Nginx>();
    send_sync::<PowerDns>();
    send_sync::<AppBackend>();
    send_sync::<FakeCloudflare>();
    send_sync::<ServerProcess>();
}

#[test]
fn postgres_primary_standby_streaming_and_power_cut() {
    let (mut primary, standby) = start_primary_with_standby().unwrap();
    assert_ne!(primary.port, standby.port);
    assert!(primary.conninfo().contains(&format!("port={}", primary.port)));
    assert!(!primary.is_in_recovery().unwrap());
    assert!(standby.is_in_recovery().unwrap());

    primary.psql("create table t (id int primary key, v text); insert into t values (1, 'one')").unwrap();
    assert!(
        wait_until(WAIT, || standby.psql("select v from t where id = 1").is_ok_and(|v| v == "one")),
        "row inserted on the primary never reached the standby"
    );
    assert!(standby.psql("insert into t values (9, 'no')").is_err());

    // Power cut on the primary, then start it again on the same port and data dir.
    let old_pid = primary.pid().unwrap();
    primary.stop_immediate();
    assert!(!primary.is_running());
    assert_gone("killed postmaster", old_pid);
    assert!(primary.psql("select 1").is_err());
    primary.start().unwrap();
    assert_ne!(primary.pid().unwrap(), old_pid);
    assert_eq!(primary.psql("select v from t where id = 1").unwrap(), "one");
    primary.psql("insert into t values (2, 'two')").unwrap();
    assert!(
        wait_until(WAIT, || standby.psql("select v from t where id = 2").is_ok_and(|v| v == "two")),
        "the standby did not resume streaming after the primary restarted"
    );

    let pids = [primary.pid().unwrap(), standby.pid().unwrap()];
    let dirs = [primary.data_dir.clone(), standby.data_dir.clone()];
    drop(standby);
    drop(primary);
    for pid in pids {
        assert_gone("postmaster", pid);
    }
    for dir in dirs {
        assert!(!dir.exists(), "{} was not removed", dir.display());
    }
}

#[test]
fn nginx_serves_static_files_and_switches_upstream() {
    let blue = AppBackend::start("blue").unwrap();
    let green = AppBackend::start("green").unwrap();
    let nginx = Nginx::start(NginxOptions {
        upstream: Some(blue.port),
        extra_server_config: "location = /extra { return 200 \"extra ok\"; }".into(),
        ..NginxOptions::default()
    })
    .unwrap();
    assert!(nginx.root.join("index.html").is_file());

    let index = http_client::get(&nginx.url("/")).unwrap();
    assert_eq!(index.status, 200);
    assert!(index.text().contains("hello from nginx"));
    nginx.write_file("dir/hello.txt", b"static hello").unwrap();
    let file = http_client::get(&nginx.url("/dir/hello.txt")).unwrap();
    assert_eq!((file.status, file.text().as_str()), (200, "static hello"));
    assert_eq!(http_client::get(&nginx.url("/missing")).unwrap().status, 404);
    assert_eq!(http_client::get(&nginx.url("/extra")).unwrap().text(), "extra ok");

    let via_nginx = http_client::get(&nginx.url("/app/")).unwrap();
    assert_eq!((via_nginx.status, via_nginx.text().as_str()), (200, "hello from blue"));
    assert_eq!(http_client::get(&nginx.url("/app/health")).unwrap().text(), "ok");
    assert!(blue.hits() >= 2);

    nginx.set_upstream(green.port).unwrap();
    let upstream = std::fs::read_to_string(nginx.upstream_path()).unwrap();
    assert_eq!(upstream.trim(), format!("server 127.0.0.1:{};", green.port));
    // set_upstream returns once old workers stopped accepting: every new request is green.
    for _ in 0..20 {
        let r = http_client::get(&nginx.url("/app/")).unwrap();
        assert_eq!((r.status, r.text().as_str()), (200, "hello from green"));
    }
    let json = http_client::get(&nginx.url("/app/json")).unwrap().json().unwrap();
    assert_eq!(json["name"], "green");

    let pid = nginx.pid().unwrap();
    let prefix = nginx.prefix.clone();
    drop(nginx);
    assert_gone("nginx master", pid);
    assert!(!prefix.exists());
}

#[tokio::test]
async fn nginx_serves_https_with_a_self_signed_certificate() {
    let certs = tempfile::tempdir().unwrap();
    let (cert, key) = tls::self_signed(certs.path(), "localhost", 30).unwrap();
    let nginx =
        Nginx::start(NginxOptions { tls: Some((cert.clone(), key.clone())), ..NginxOptions::default() }).unwrap();
    assert!(nginx.url("/").starts_with("https://127.0.0.1:"));
    nginx.write_file("tls.txt", b"over tls").unwrap();

    let pem = std::fs::read(&cert).unwrap();
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .tls_built_in_root_certs(false)
        .build()
        .unwrap();
    let response = client.get(nginx.url("/tls.txt")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "over tls");

    // A client that does not trust the certificate refuses the connection.
    let stranger = reqwest::Client::builder().tls_built_in_root_certs(false).build().unwrap();
    assert!(stranger.get(nginx.url("/tls.txt")).send().await.is_err());

    // An expired certificate: openssl says so.
    let (old_cert, _) = tls::self_signed(certs.path(), "expired.test", -1).unwrap();
    let checkend =
        Command::new("openssl").args(["x509", "-checkend", "0", "-noout", "-in"]).arg(&old_cert).output().unwrap();
    assert!(!checkend.status.success(), "the -1 day certificate is not expired");

    let pid = nginx.pid().unwrap();
    drop(nginx);
    assert_gone("nginx (tls) master", pid);
}

#[test]
fn powerdns_serves_a_zone_and_follows_api_changes() {
    let pdns = PowerDns::start().unwrap();
    assert_eq!(pdns.api_url(), format!("http://127.0.0.1:{}/api/v1", pdns.api_port));
    pdns.create_zone(
        "example.com",
        &[
            ("app", "A", "192.0.2.10", 60),
            ("db.example.com.", "A", "192.0.2.20", 60),
            ("db.example.com.", "A", "192.0.2.21", 60),
            ("www", "CNAME", "app.example.com.", 60),
        ],
    )
    .unwrap();
    assert_eq!(pdns.dig("app.example.com", "A").unwrap(), ["192.0.2.10"]);
    let mut db = pdns.dig("db.example.com", "A").unwrap();
    db.sort();
    assert_eq!(db, ["192.0.2.20", "192.0.2.21"]);
    assert_eq!(pdns.dig("www.example.com", "CNAME").unwrap(), ["app.example.com."]);

    pdns.replace_rrset("example.com", "app", "A", &["198.51.100.20"], 60).unwrap();
    assert_eq!(pdns.dig("app.example.com", "A").unwrap(), ["198.51.100.20"]);

    let zone = pdns.api("GET", "/servers/localhost/zones/example.com.", None).unwrap().json().unwrap();
    assert_eq!(zone["name"], "example.com.");
    assert!(pdns.api("GET", "/servers/localhost/zones/nope.example.", None).is_err());

    let pid = pdns.pid().unwrap();
    drop(pdns);
    assert_gone("pdns_server", pid);
}

#[test]
fn app_backend_health_flip_and_restart_on_the_same_port() {
    let mut app = AppBackend::start("blue").unwrap();
    assert_eq!(app.name(), "blue");
    let root = http_client::get(&app.url("/")).unwrap();
    assert_eq!((root.status, root.text().as_str()), (200, "hello from blue"));
    assert_eq!(root.header("x-backend"), Some("blue"));
    assert_eq!(http_client::get(&app.url("/health")).unwrap().status, 200);

    app.set_healthy(false);
    let sick = http_client::get(&app.url("/health")).unwrap();
    assert_eq!((sick.status, sick.text().as_str()), (503, "unhealthy"));
    app.set_healthy(true);
    app.set_body("version 2");
    assert_eq!(http_client::get(&app.url("/")).unwrap().text(), "version 2");
    assert_eq!(http_client::get(&app.url("/status/418")).unwrap().status, 418);
    let slow = http_client::get(&app.url("/slow?ms=50")).unwrap();
    assert_eq!(slow.status, 200);
    let json = http_client::get(&app.url("/json")).unwrap().json().unwrap();
    assert_eq!(json["name"], "blue");
    assert_eq!(json["status"], "ok");
    assert_eq!(json["count"], 7);
    assert_eq!(app.hits(), 7);

    let port = app.port;
    app.stop();
    assert!(http_client::get(&app.url("/health")).is_err());
    app.start_again().unwrap();
    assert_eq!(app.port, port);
    assert_eq!(http_client::get(&app.url("/health")).unwrap().text(), "ok");
    assert_eq!(app.hits(), 8);
}

#[tokio::test]
async fn fake_cloudflare_driven_through_the_cloudflare_crate() {
    let cf = FakeCloudflare::start().unwrap();
    let zone_id = cf.add_zone("example.com");
    assert_eq!(zone_id.len(), 32);
    assert!(zone_id.chars().all(|c| c.is_ascii_hexdigit()));
    cf.add_zone("other.example");
    let record_id = cf.add_record(&zone_id, "app", "A", "192.0.2.1", 60, false);
    cf.add_record(&zone_id, "www.example.com", "CNAME", "app.example.com", 1, true);

    let client = Client::new(
        Credentials::UserAuthToken { token: cf.token.clone() },
        ClientConfig::default(),
        Environment::Custom(cf.base_url()),
    )
    .unwrap();

    let zones = client
        .request(&ListZones { params: ListZonesParams { name: Some("example.com".into()), ..Default::default() } })
        .await
        .unwrap();
    assert_eq!(zones.result.len(), 1);
    assert_eq!(zones.result[0].id, zone_id);
    assert_eq!(zones.result[0].name, "example.com");
    assert!(zones.result_info.is_some());
    let zone = client.request(&ZoneDetails { identifier: &zone_id }).await.unwrap();
    assert_eq!(zone.result.name, "example.com");

    let records = client
        .request(&ListDnsRecords {
            zone_identifier: &zone_id,
            params: ListDnsRecordsParams { name: Some("app.example.com".into()), ..Default::default() },
        })
        .await
        .unwrap();
    assert_eq!(records.result.len(), 1);
    assert_eq!(records.result[0].id, record_id);
    assert!(matches!(
        records.result[0].content,
        DnsContent::A { content } if content.to_string() == "192.0.2.1"
    ));

    let updated = client
        .request(&UpdateDnsRecord {
            zone_identifier: &zone_id,
            identifier: &record_id,
            params: UpdateDnsRecordParams {
                ttl: Some(60),
                proxied: Some(false),
                name: "app.example.com",
                content: DnsContent::A { content: "198.51.100.7".parse().unwrap() },
            },
        })
        .await
        .unwrap();
    assert_eq!(updated.result.id, record_id);
    let stored = cf.record(&zone_id, &record_id).unwrap();
    assert_eq!(stored["content"], "198.51.100.7");
    assert_eq!(stored["ttl"], 60);
    let all = client
        .request(&ListDnsRecords { zone_identifier: &zone_id, params: ListDnsRecordsParams::default() })
        .await
        .unwrap();
    assert_eq!(all.result.len(), 2);
    let app = all.result.iter().find(|r| r.id == record_id).unwrap();
    assert!(matches!(
        app.content,
        DnsContent::A { content } if content.to_string() == "198.51.100.7"
    ));

    let created = client
        .request(&CreateDnsRecord {
            zone_identifier: &zone_id,
            params: CreateDnsRecordParams {
                ttl: Some(120),
                priority: None,
                proxied: Some(false),
                name: "backup",
                content: DnsContent::A { content: "203.0.113.5".parse().unwrap() },
            },
        })
        .await
        .unwrap();
    assert_eq!(created.result.name, "backup.example.com");
    client.request(&DeleteDnsRecord { zone_identifier: &zone_id, identifier: &created.result.id }).await.unwrap();
    assert!(cf.record(&zone_id, &created.result.id).is_none());

    // An injected 500 shows up as an API error; the next request works again.
    cf.inject(Fault::Status(500), 1);
    match client.request(&ZoneDetails { identifier: &zone_id }).await {
        Err(ApiFailure::Error(status, errors)) => {
            assert_eq!(status.as_u16(), 500);
            assert_eq!(errors.errors[0].code, 500);
        }
        other => panic!("expected an API error, got {other:?}"),
    }
    cf.inject(Fault::Status(429), 1);
    let limited = http_client::request(
        "GET",
        &format!("{}zones", cf.base_url()),
        &[("Authorization", &format!("Bearer {}", cf.token))],
        None,
    )
    .unwrap();
    assert_eq!(limited.status, 429);
    assert_eq!(limited.header("retry-after"), Some("1"));
    assert_eq!(limited.json().unwrap()["errors"][0]["code"], 971);
    cf.inject(Fault::Delay(Duration::from_millis(100)), 1);
    let started = std::time::Instant::now();
    client.request(&ZoneDetails { identifier: &zone_id }).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(100));

    // A wrong token gets the real 403 envelope with code 9109.
    let stranger = Client::new(
        Credentials::UserAuthToken { token: "wrong".into() },
        ClientConfig::default(),
        Environment::Custom(cf.base_url()),
    )
    .unwrap();
    match stranger.request(&ListZones { params: ListZonesParams::default() }).await {
        Err(ApiFailure::Error(status, errors)) => {
            assert_eq!(status.as_u16(), 403);
            assert_eq!(errors.errors[0].code, 9109);
        }
        other => panic!("expected 403, got {other:?}"),
    }

    let requests = cf.requests();
    assert!(requests.contains(&("PUT".to_string(), format!("/client/v4/zones/{zone_id}/dns_records/{record_id}"))));
    assert!(requests.iter().any(|(method, path)| method == "GET" && path == "/client/v4/zones"));
}

#[test]
fn server_process_reports_start_failures_and_kills_its_group() {
    let logs = tempfile::tempdir().unwrap();

    let mut cmd = Command::new("sh");
    cmd.args(["-c", "echo 'boom: cannot start' >&2; exit 3"]);
    let mut failing = ServerProcess::spawn(cmd, "failing", logs.path().join("failing.log")).unwrap();
    let err = failing.wait_ready(Duration::from_secs(5), || false).unwrap_err().to_string();
    assert!(err.contains("boom: cannot start"), "{err}");
    assert!(!failing.is_running());

    // A server that leaves a child behind: the child is killed with the group.
    let child_pid_file = logs.path().join("child.pid");
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(format!("sleep 30 & echo $! > {}; wait", child_pid_file.display()));
    let server = ServerProcess::spawn(cmd, "parent", logs.path().join("parent.log")).unwrap();
    assert!(
        wait_until(WAIT, || std::fs::read_to_string(&child_pid_file).is_ok_and(|s| s.trim().parse::<u32>().is_ok()))
    );
    let child: u32 = std::fs::read_to_string(&child_pid_file).unwrap().trim().parse().unwrap();
    let pid = server.pid();
    assert!(pid_alive(pid) && pid_alive(child) && group_alive(pid));
    drop(server);
    assert_gone("sh", pid);
    assert!(!pid_alive(child), "the background sleep survived");
}

#[test]
fn app_backend_also_serves_on_a_unix_socket_across_restarts() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("blue.sock");
    let mut app = AppBackend::start("blue").unwrap();
    app.listen_unix(&path).unwrap();
    let get = |path: &std::path::Path| -> std::io::Result<String> {
        let mut s = std::os::unix::net::UnixStream::connect(path)?;
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")?;
        let mut out = String::new();
        s.read_to_string(&mut out)?;
        Ok(out)
    };
    let answer = get(&path).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200") && answer.ends_with("hello from blue"), "{answer}");
    app.stop();
    assert!(!path.exists(), "the socket file goes with the server");
    assert!(get(&path).is_err());
    app.start_again().unwrap();
    assert!(get(&path).unwrap().contains("x-backend: blue"));
    assert_eq!(app.unix_path(), Some(path.as_path()));
}
