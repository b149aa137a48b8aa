//! Two app colours (harness [`AppBackend`]s named blue and green, which say so in
//! `X-Backend`) behind a private nginx, started and stopped by the tool's `start`/`stop`
//! commands through a small control server: `curl /start/{color}/{version}`. The version
//! decides how the app behaves: containing `unhealthy` fails its health check, `smoke-fails`
//! fails the smoke suite (its body lacks "release"), `flaky` turns unhealthy as soon as the
//! upstream file names it (the watch period catches it), `slow-smoke` answers `/` only after
//! [`SLOW`] (the smoke suite hangs before the switch) and `slow-verify` does so once the
//! upstream file names it (the suite hangs in the verify step, after the switch).

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use standby_e2e::{AppBackend, Nginx, NginxOptions};

pub const BIN: &str = env!("CARGO_BIN_EXE_blue-green-deploy");

pub struct Fleet {
    pub nginx: Nginx,
    pub apps: Arc<Mutex<[AppBackend; 2]>>,
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    ports: [u16; 2],
}

/// How long `/` takes to answer in a `slow-smoke` or `slow-verify` version.
pub const SLOW: Duration = Duration::from_secs(60);

fn index(color: &str) -> usize {
    usize::from(color == "green")
}

fn handle(apps: &Arc<Mutex<[AppBackend; 2]>>, upstream: &Path, line: &str) -> bool {
    let path = line.split_whitespace().nth(1).unwrap_or_default();
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let mut guard = apps.lock().unwrap_or_else(|p| p.into_inner());
    match parts.as_slice() {
        ["start", color, version] => {
            let app = &mut guard[index(color)];
            app.set_body(&format!("{color} {version}"));
            app.set_healthy(!version.contains("unhealthy"));
            if version.contains("smoke-fails") {
                app.set_body(&format!("{color} broken"));
            }
            app.set_body_delay(if version.contains("slow-smoke") { SLOW } else { Duration::ZERO });
            if app.start_again().is_err() {
                return false;
            }
            let once_live: Option<fn(&AppBackend)> = if version.contains("flaky") {
                Some(|app| app.set_healthy(false))
            } else if version.contains("slow-verify") {
                Some(|app| app.set_body_delay(SLOW))
            } else {
                None
            };
            if let Some(change) = once_live {
                let (apps, upstream, port) = (apps.clone(), upstream.to_path_buf(), app.port);
                let i = index(color);
                let socket = format!("/{color}.sock");
                std::thread::spawn(move || {
                    // Changes once traffic is sent its way (the event: the include names it).
                    let names_it = || {
                        std::fs::read_to_string(&upstream)
                            .is_ok_and(|t| t.contains(&format!(":{port};")) || t.contains(&socket))
                    };
                    if standby_e2e::process::wait_until(Duration::from_secs(60), names_it) {
                        change(&apps.lock().unwrap_or_else(|p| p.into_inner())[i]);
                    }
                });
            }
            true
        }
        ["stop", color] => {
            guard[index(color)].stop();
            true
        }
        _ => false,
    }
}

impl Fleet {
    /// Blue live and running, green stopped; `extra` goes into the `[blue-green-deploy]` section.
    pub fn start(extra: &str) -> Fleet {
        Fleet::start_with(extra, false)
    }

    /// Socket mode: each colour also listens on `<dir>/<colour>.sock`, nginx proxies to
    /// `unix:<dir>/live.sock`, a symlink to blue's socket.
    pub fn start_sockets(extra: &str) -> Fleet {
        Fleet::start_with(extra, true)
    }

    fn start_with(extra: &str, sockets: bool) -> Fleet {
        let dir = tempfile::tempdir().expect("temp dir");
        let sock = |name: &str| dir.path().join(format!("{name}.sock"));
        let mut blue = AppBackend::start("blue").expect("blue");
        blue.set_body("blue release-1");
        let mut green = AppBackend::start("green").expect("green");
        if sockets {
            blue.listen_unix(&sock("blue")).expect("blue socket");
            green.listen_unix(&sock("green")).expect("green socket");
        }
        green.stop();
        let ports = [blue.port, green.port];
        let nginx = Nginx::start(NginxOptions {
            upstream: Some(blue.port),
            // A glob that matches nothing is fine; a test drops a broken file here.
            extra_server_config: "include extra-*.conf;".into(),
            ..NginxOptions::default()
        })
        .expect("nginx");
        let apps = Arc::new(Mutex::new([blue, green]));
        let control = TcpListener::bind("127.0.0.1:0").expect("bind control");
        let control_port = control.local_addr().expect("addr").port();
        let (apps2, upstream) = (apps.clone(), nginx.upstream_path());
        std::thread::spawn(move || {
            for stream in control.incoming().flatten() {
                let mut reader = BufReader::new(&stream);
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                let ok = handle(&apps2, &upstream, &line);
                let status = if ok { "200 OK" } else { "500 Internal Server Error" };
                let _ = (&stream).write_all(
                    format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").as_bytes(),
                );
            }
        });
        if sockets {
            let text = format!("# live-socket: {}\nserver unix:{};\n", sock("blue").display(), sock("live").display());
            std::os::unix::fs::symlink(sock("blue"), sock("live")).expect("link");
            std::fs::write(nginx.upstream_path(), text).expect("upstream");
            nginx.reload().expect("reload");
        }
        let socket_keys = |name: &str| {
            if sockets {
                format!("socket = {:?}\n", sock(name).display().to_string())
            } else {
                String::new()
            }
        };
        let live_socket =
            if sockets { format!("live-socket = {:?}", sock("live").display().to_string()) } else { String::new() };
        // Holds: while `<dir>/hold-NAME` exists, the start or stop command (after it did its
        // work) or `nginx -t` waits, so that a test can kill -9 a deploy inside that step.
        let hold = dir.path().join("hold.sh");
        std::fs::write(&hold, "while [ -e \"$(dirname \"$0\")/hold-$1\" ]; do sleep 0.05; done\n").expect("hold.sh");
        let nginx_sh = dir.path().join("nginx.sh");
        std::fs::write(
            &nginx_sh,
            format!("case \" $* \" in *\" -t \"*) sh {} nginx-t;; esac\nexec nginx \"$@\"\n", hold.display()),
        )
        .expect("nginx.sh");
        let suite = dir.path().join("smoke.toml");
        std::fs::write(
            &suite,
            "[[check]]\nname = \"home\"\npath = \"/\"\nexpect = { status = 200, body-contains = \"release\" }\n\n\
             [[check]]\nname = \"health\"\npath = \"/health\"\nexpect = { status = 200 }\n",
        )
        .expect("suite");
        let config = dir.path().join("standby.toml");
        let ctl = format!("http://127.0.0.1:{control_port}");
        std::fs::write(
            &config,
            format!(
                "[blue-green-deploy]\n\
                 upstream-file = {upstream:?}\n\
                 nginx = [\"sh\", {nginx_sh:?}, \"-p\", {prefix:?}, \"-c\", {conf:?}]\n\
                 start = \"curl -fsS {ctl}/start/{{color}}/{{version}} && sh {hold} start\"\n\
                 stop = \"curl -fsS {ctl}/stop/{{color}} && sh {hold} stop\"\n\
                 health-path = \"/health\"\n\
                 smoke-suite = {suite:?}\n\
                 public-url = \"{public}\"\n\
                 color-header = \"X-Backend\"\n\
                 {drain}\n\
                 {live_socket}\n\
                 {extra}\n\n\
                 [blue-green-deploy.blue]\naddress = \"127.0.0.1:{b}\"\n{bs}\
                 [blue-green-deploy.green]\naddress = \"127.0.0.1:{g}\"\n{gs}",
                upstream = nginx.upstream_path().display().to_string(),
                prefix = nginx.prefix.display().to_string(),
                conf = nginx.conf_path().display().to_string(),
                nginx_sh = nginx_sh.display().to_string(),
                hold = hold.display(),
                suite = suite.display().to_string(),
                public = nginx.url("/app"),
                drain = if extra.contains("drain") { "" } else { "drain = \"0s\"" },
                b = ports[0],
                g = ports[1],
                bs = socket_keys("blue"),
                gs = socket_keys("green"),
            ),
        )
        .expect("config");
        Fleet { nginx, apps, dir, config, ports }
    }

    /// Run the binary with the fleet's config and state dir, `--json`.
    pub fn run(&self, args: &[&str]) -> (i32, serde_json::Value, String) {
        let out = self.command(args).output().expect("runs");
        parse(&out)
    }

    pub fn command(&self, args: &[&str]) -> std::process::Command {
        let mut cmd = std::process::Command::new(BIN);
        cmd.arg("--config").arg(&self.config).arg("--state-dir").arg(self.state_dir()).arg("--json").args(args);
        cmd.env_remove("RUST_LOG").env("STANDBY_RUN_DIR", self.run_dir());
        cmd
    }

    /// The host-wide switching lock's dir, private to this fleet.
    pub fn run_dir(&self) -> PathBuf {
        self.dir.path().join("run")
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    pub fn upstream(&self) -> String {
        std::fs::read_to_string(self.nginx.upstream_path()).expect("upstream file")
    }

    /// The colour the include names.
    pub fn live_in_file(&self) -> &'static str {
        let text = self.upstream();
        if text.contains(&format!(":{};", self.ports[1])) || text.contains("/green.sock") {
            "green"
        } else {
            assert!(text.contains(&format!(":{};", self.ports[0])) || text.contains("/blue.sock"), "{text}");
            "blue"
        }
    }

    pub fn running(&self, color: &str) -> bool {
        self.apps.lock().unwrap_or_else(|p| p.into_inner())[index(color)].is_running()
    }

    /// Start a colour by hand (as a person would before `switch`).
    pub fn start_color(&self, color: &str, version: &str) {
        assert!(handle(&self.apps, &self.nginx.upstream_path(), &format!("GET /start/{color}/{version} HTTP/1.1")));
    }

    /// Which colour answers `/app/` through nginx, and its body.
    pub fn through_nginx(&self) -> (String, String) {
        let resp = standby_e2e::http_client::get(&self.nginx.url("/app/")).expect("GET through nginx");
        (resp.header("x-backend").unwrap_or_default().to_string(), resp.text())
    }
}

pub fn parse(out: &Output) -> (i32, serde_json::Value, String) {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("stdout is not JSON ({e}): {}\nstderr: {stderr}", String::from_utf8_lossy(&out.stdout))
    });
    (out.status.code().unwrap_or(-1), json, stderr)
}

impl Fleet {
    /// While the returned guard lives, the step `name` (`start`, `stop`, `nginx-t`) waits.
    pub fn hold(&self, name: &str) -> Hold {
        let path = self.dir.path().join(format!("hold-{name}"));
        std::fs::write(&path, "").expect("hold file");
        Hold(path)
    }

    /// Socket mode: where `live.sock` points.
    pub fn link_target(&self) -> PathBuf {
        std::fs::read_link(self.dir.path().join("live.sock")).expect("live.sock is a symlink")
    }
}

/// Removes its hold file on drop.
pub struct Hold(PathBuf);

impl Drop for Hold {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
