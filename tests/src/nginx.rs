//! nginx in a private prefix: a static root, optional TLS, optional `/app/` reverse proxy
//! whose upstream is a one-line include file (the blue/green switch).

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context};

use crate::ports::free_port;
use crate::process::{run_checked, wait_until, ServerProcess};
use crate::util;

const START_TIMEOUT: Duration = Duration::from_secs(15);

/// What to put in the generated nginx.conf.
#[derive(Debug, Clone, Default)]
pub struct NginxOptions {
    /// `(certificate, key)`: listen with `ssl` using these PEM files.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Inserted verbatim inside the `server { }` block.
    pub extra_server_config: String,
    /// `Some(port)`: `location /app/` proxies to `upstream app`, whose servers come from
    /// `<prefix>/upstream.conf` (initially `server 127.0.0.1:PORT;`). `/app/x` reaches the
    /// backend as `/x`.
    pub upstream: Option<u16>,
}

/// A running nginx (master + one worker). Dropping it stops nginx and removes the prefix.
pub struct Nginx {
    /// The port nginx listens on (127.0.0.1).
    pub port: u16,
    /// The `-p` prefix: nginx.conf, upstream.conf, pid file, log, temp dirs.
    pub prefix: PathBuf,
    /// The static document root (`<prefix>/html`), with an `index.html`.
    pub root: PathBuf,
    tls: bool,
    process: Option<ServerProcess>,
    dir: Option<tempfile::TempDir>,
}

impl Nginx {
    /// Writes the config, starts `nginx -c CONF -p PREFIX -g 'daemon off;'` and waits until
    /// it accepts connections.
    pub fn start(opts: NginxOptions) -> anyhow::Result<Nginx> {
        let dir = util::temp_dir("nginx")?;
        let prefix = dir.path().to_path_buf();
        let root = prefix.join("html");
        std::fs::create_dir(&root).context("mkdir html")?;
        std::fs::write(
            root.join("index.html"),
            "<!doctype html>\n<title>standby</title>\n<p>hello from nginx</p>\n",
        )?;
        let mut nginx = Nginx {
            port: 0,
            prefix,
            root,
            tls: opts.tls.is_some(),
            process: None,
            dir: Some(dir),
        };
        if let Some(port) = opts.upstream {
            util::write_atomic(&nginx.upstream_path(), upstream_line(port).as_bytes())?;
        }
        let mut last = None;
        for _ in 0..3 {
            nginx.port = free_port();
            std::fs::write(nginx.conf_path(), nginx.config(&opts))?;
            match nginx.spawn() {
                Ok(()) => return Ok(nginx),
                Err(e) if format!("{e:#}").contains("Address already in use") => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| anyhow::anyhow!("no free port for nginx")))
    }

    fn spawn(&mut self) -> anyhow::Result<()> {
        let mut cmd = Command::new("nginx");
        cmd.arg("-c")
            .arg(self.conf_path())
            .arg("-p")
            .arg(&self.prefix)
            .args(["-g", "daemon off;"]);
        let mut process = ServerProcess::spawn(cmd, "nginx", self.log_path())?;
        // SIGQUIT: graceful shutdown (finish requests), SIGKILL after the stop timeout.
        process.set_stop_signal(libc::SIGQUIT);
        // The pid file is written after the listening socket is bound, so a port that
        // answers because some other program holds it does not count.
        let (port, pid, pid_file) = (self.port, process.pid(), self.prefix.join("nginx.pid"));
        process.wait_ready(START_TIMEOUT, || {
            std::fs::read_to_string(&pid_file).is_ok_and(|s| s.trim() == pid.to_string())
                && crate::process::port_open(port)
        })?;
        self.process = Some(process);
        Ok(())
    }

    fn config(&self, opts: &NginxOptions) -> String {
        let p = self.prefix.display();
        let user = if util::is_root() { "user root;\n" } else { "" };
        let listen = if opts.tls.is_some() {
            format!("listen 127.0.0.1:{} ssl;", self.port)
        } else {
            format!("listen 127.0.0.1:{};", self.port)
        };
        let tls = opts
            .tls
            .as_ref()
            .map(|(cert, key)| {
                format!(
                    "        ssl_certificate {};\n        ssl_certificate_key {};\n",
                    cert.display(),
                    key.display()
                )
            })
            .unwrap_or_default();
        let (upstream_block, app_location) = if opts.upstream.is_some() {
            (
                format!(
                    "    upstream app {{\n        include {};\n    }}\n",
                    self.upstream_path().display()
                ),
                "        location /app/ {\n            proxy_pass http://app/;\n            \
                 proxy_http_version 1.1;\n            proxy_set_header Connection \"\";\n            \
                 proxy_set_header Host $host;\n        }\n"
                    .to_string(),
            )
        } else {
            (String::new(), String::new())
        };
        format!(
            "# generated by standby-e2e\n\
             {user}worker_processes 1;\n\
             pid {p}/nginx.pid;\n\
             error_log {p}/nginx.log notice;\n\
             events {{\n    worker_connections 512;\n}}\n\
             http {{\n\
             \x20   access_log off;\n\
             \x20   client_body_temp_path {p}/client_body_temp;\n\
             \x20   proxy_temp_path {p}/proxy_temp;\n\
             \x20   fastcgi_temp_path {p}/fastcgi_temp;\n\
             \x20   uwsgi_temp_path {p}/uwsgi_temp;\n\
             \x20   scgi_temp_path {p}/scgi_temp;\n\
             \x20   types {{\n        text/html html;\n        text/plain txt;\n        \
             application/json json;\n        text/css css;\n        \
             application/javascript js;\n    }}\n\
             \x20   default_type application/octet-stream;\n\
             \x20   keepalive_timeout 5s;\n\
             {upstream_block}\
             \x20   server {{\n\
             \x20       {listen}\n\
             \x20       server_name localhost;\n\
             \x20       root {root};\n\
             {tls}\
             {app_location}\
             \x20       {extra}\n\
             \x20   }}\n\
             }}\n",
            root = self.root.display(),
            extra = opts.extra_server_config,
        )
    }

    /// `http://127.0.0.1:PORT<path>` (`https` with TLS).
    pub fn url(&self, path: &str) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}{path}", self.port)
    }

    /// `<prefix>/nginx.conf`.
    pub fn conf_path(&self) -> PathBuf {
        self.prefix.join("nginx.conf")
    }

    /// `<prefix>/upstream.conf`, included by `upstream app { }`.
    pub fn upstream_path(&self) -> PathBuf {
        self.prefix.join("upstream.conf")
    }

    /// nginx's error log and stdout/stderr.
    pub fn log_path(&self) -> PathBuf {
        self.prefix.join("nginx.log")
    }

    /// PID of the master process while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().map(ServerProcess::pid)
    }

    /// Writes a file under the static root (parent dirs created).
    pub fn write_file(&self, rel_path: &str, contents: &[u8]) -> anyhow::Result<()> {
        let path = self.root.join(rel_path.trim_start_matches('/'));
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("mkdir {}", parent.display()))?;
        }
        util::write_atomic(&path, contents)
    }

    /// Points `upstream app` at 127.0.0.1:`port` (atomic rewrite of upstream.conf) and
    /// reloads.
    pub fn set_upstream(&self, port: u16) -> anyhow::Result<()> {
        util::write_atomic(&self.upstream_path(), upstream_line(port).as_bytes())?;
        self.reload()
    }

    /// `nginx -s reload -c CONF -p PREFIX`; returns once the master has started a worker
    /// with the new configuration and the old workers no longer accept connections (they
    /// may still finish requests in flight).
    pub fn reload(&self) -> anyhow::Result<()> {
        let Some(master) = self.pid() else {
            bail!("nginx is not running");
        };
        let before = children(master);
        let mut cmd = Command::new("nginx");
        cmd.args(["-s", "reload", "-c"])
            .arg(self.conf_path())
            .arg("-p")
            .arg(&self.prefix);
        run_checked(cmd, Duration::from_secs(15)).context("nginx -s reload")?;
        // Done when a new worker runs and every old worker has exited or has begun its
        // graceful shutdown (it closes the listening socket right after renaming itself).
        let reloaded = wait_until(Duration::from_secs(10), || {
            let now = children(master);
            now.iter().any(|pid| !before.contains(pid))
                && before
                    .iter()
                    .all(|pid| !now.contains(pid) || shutting_down(*pid))
        });
        if !reloaded {
            bail!(
                "nginx started no new worker after reload\n--- {} ---\n{}",
                self.log_path().display(),
                crate::process::log_tail(&self.log_path(), 20)
            );
        }
        Ok(())
    }

    /// Stops nginx (graceful, then SIGKILL); the prefix stays until drop.
    pub fn stop(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.stop();
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        self.stop();
        drop(self.dir.take());
    }
}

fn upstream_line(port: u16) -> String {
    format!("server 127.0.0.1:{port};\n")
}

/// True when an nginx worker has retitled itself "worker process is shutting down".
fn shutting_down(pid: u32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .is_ok_and(|cmdline| String::from_utf8_lossy(&cmdline).contains("shutting down"))
}

/// Live child processes of `parent` (nginx workers), from /proc.
fn children(parent: u32) -> HashSet<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return HashSet::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()))
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|stat| {
                    let rest = &stat[stat.rfind(')')? + 1..];
                    let mut f = rest.split_whitespace();
                    let state = f.next()?;
                    let ppid: u32 = f.next()?.parse().ok()?;
                    Some(ppid == parent && state != "Z")
                })
                .unwrap_or(false)
        })
        .collect()
}
