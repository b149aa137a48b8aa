//! The reverse proxy in front of the colours. [`Proxy`] is what a deploy needs from it (where
//! traffic goes now, and a guarded switch); [`Nginx`] implements it with an `upstream` include
//! file and `nginx -t` / `nginx -s reload`. HAProxy (a server line + `-c` + reload over the
//! master socket) and Caddy (its admin API) fit the same trait.
//!
//! Socket mode (`live-socket` set): the include names `server unix:<live-socket>;` once, plus
//! a `# live-socket: <colour's socket>` line that keeps the file the one source of truth; a
//! switch writes the file, runs `nginx -t`, then renames a new symlink over `live-socket`
//! (nginx resolves the path at every upstream connect): no reload, so no old worker closes a
//! client's keep-alive connection. The link is repaired from the file after a crash.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use standby_common::exec::Cmd;
use standby_common::exit::{self, Code};
use standby_common::state::write_atomic;

use crate::color::Backend;

/// How long `nginx -t` or `nginx -s reload` may take.
const NGINX_TIMEOUT: Duration = Duration::from_secs(30);

/// A reverse proxy whose traffic can be pointed at one colour.
pub trait Proxy {
    /// Where its configuration lives, for messages.
    fn describe(&self) -> String;
    /// The address traffic goes to, read from the proxy's own configuration (the one source
    /// of truth); `None` when none is configured yet.
    fn live_address(&self) -> anyhow::Result<Option<String>>;
    /// Where connections go now, when that can differ from [`Proxy::live_address`] (socket
    /// mode: the symlink's target; after a crash between writing the file and renaming the
    /// link they differ until [`Proxy::apply`]).
    fn traffic_address(&self) -> anyhow::Result<Option<String>> {
        self.live_address()
    }
    /// Send traffic to `to`. The new configuration is validated before it is applied; when
    /// it is rejected, the previous one is restored, nothing is applied, and the error
    /// (exit 1) says so.
    fn switch(&self, to: &Backend, note: &str) -> anyhow::Result<()>;
    /// Validate and apply the configuration as it is (after an interrupted switch, so that
    /// the proxy serves what its file says).
    fn apply(&self) -> anyhow::Result<()>;
}

/// nginx with an include file inside `upstream app { include FILE; }` that holds one
/// `server ADDRESS;` line (or, in socket mode, `server unix:LIVE_SOCKET;`).
#[derive(Debug, Clone)]
pub struct Nginx {
    pub upstream_file: PathBuf,
    /// argv prefix: `nginx`, or `nginx -p PREFIX -c CONF`.
    pub argv: Vec<String>,
    /// Socket mode: the symlink the include names, renamed onto the live colour's socket.
    pub live_socket: Option<PathBuf>,
}

impl Nginx {
    fn cmd(&self, args: &[&str]) -> Cmd {
        let (program, prefix) = match self.argv.split_first() {
            Some((p, rest)) => (p.as_str(), rest),
            None => ("nginx", &[][..]),
        };
        Cmd::new(program).args(prefix).args(args).timeout(NGINX_TIMEOUT)
    }

    /// `nginx -t`: the whole configuration, includes and all.
    fn test(&self) -> anyhow::Result<()> {
        let done = self.cmd(&["-t"]).run()?;
        if !done.success() {
            return Err(exit::error(
                Code::Failed,
                format!("nginx -t rejected the configuration: {}", done.stderr_tail()),
            ));
        }
        Ok(())
    }

    fn reload(&self) -> anyhow::Result<()> {
        self.cmd(&["-s", "reload"]).run_ok().context("nginx -s reload")?;
        Ok(())
    }
}

/// The upstream file's text for one backend.
pub fn upstream_text(to: &Backend, note: &str) -> String {
    format!("# written by blue-green-deploy: {note}\nserver {};\n", to.address)
}

/// The marker of socket mode: the socket the live link points at.
const MARKER: &str = "# live-socket:";

/// The upstream file's text in socket mode: the fixed link, and the live colour's socket.
pub fn socket_upstream_text(link: &Path, socket: &Path, note: &str) -> String {
    format!(
        "# written by blue-green-deploy: {note}\n{MARKER} {}\n\
         # ({} is a symlink to it, renamed at each switch: no reload)\nserver unix:{};\n",
        socket.display(),
        link.display(),
        link.display()
    )
}

/// The socket named by the `# live-socket:` line, if any.
pub fn parse_marker(text: &str) -> Option<String> {
    text.lines().find_map(|l| l.trim().strip_prefix(MARKER)).map(|p| p.trim().to_string()).filter(|p| !p.is_empty())
}

/// Point `link` at `target`: a new symlink renamed over it (atomic: a connect() sees the old
/// target or the new one, never none), then the directory synced.
pub fn relink(link: &Path, target: &Path) -> anyhow::Result<()> {
    let name = link.file_name().and_then(|n| n.to_str()).unwrap_or("live.sock");
    let tmp = link.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(target, &tmp)
        .with_context(|| format!("cannot create the symlink {} -> {}", tmp.display(), target.display()))?;
    if let Err(e) = std::fs::rename(&tmp, link) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("cannot rename {} over {}", tmp.display(), link.display()));
    }
    if let Some(dir) = link.parent().filter(|d| !d.as_os_str().is_empty()) {
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

/// Where a symlink points, `None` when it does not exist.
fn read_link(link: &Path) -> anyhow::Result<Option<String>> {
    match std::fs::read_link(link) {
        Ok(target) => Ok(Some(target.display().to_string())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read the symlink {}", link.display())),
    }
}

/// The address of the single `server` line of an upstream file.
pub fn parse_upstream(text: &str) -> Result<Option<String>, String> {
    let mut servers = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or_default();
        for stmt in line.split(';') {
            let mut words = stmt.split_whitespace();
            if words.next() == Some("server") {
                if let Some(address) = words.next() {
                    servers.push(address.to_string());
                }
            }
        }
    }
    match servers.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(one.clone())),
        many => Err(format!("{} server lines ({}); blue-green-deploy writes one", many.len(), many.join(", "))),
    }
}

fn read_optional(path: &Path) -> anyhow::Result<Option<Vec<u8>>> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

impl Nginx {
    /// `server unix:LINK` in socket mode.
    fn socket_server(&self) -> Option<String> {
        self.live_socket.as_ref().map(|l| format!("unix:{}", l.display()))
    }

    fn read_text(&self) -> anyhow::Result<Option<String>> {
        Ok(read_optional(&self.upstream_file)?.map(|b| String::from_utf8_lossy(&b).into_owned()))
    }

    fn server_of(&self, text: &str) -> anyhow::Result<Option<String>> {
        parse_upstream(text).map_err(|e| exit::error(Code::Failed, format!("{}: {e}", self.upstream_file.display())))
    }

    /// Write `text`, run `nginx -t`; restore the previous content when rejected.
    fn write_tested(&self, previous: &Option<Vec<u8>>, text: &str) -> anyhow::Result<()> {
        write_atomic(&self.upstream_file, text.as_bytes())?;
        if let Err(e) = self.test() {
            return Err(match self.restore(previous) {
                Ok(()) => e.context(format!(
                    "{} restored to its previous content; nginx was not reloaded, traffic unchanged",
                    self.upstream_file.display()
                )),
                Err(r) => e.context(format!("and restoring {} failed too: {r:#}", self.upstream_file.display())),
            });
        }
        Ok(())
    }

    fn restore(&self, previous: &Option<Vec<u8>>) -> anyhow::Result<()> {
        match previous {
            Some(bytes) => write_atomic(&self.upstream_file, bytes),
            None => std::fs::remove_file(&self.upstream_file)
                .with_context(|| format!("cannot remove {}", self.upstream_file.display())),
        }
    }
}

impl Proxy for Nginx {
    fn describe(&self) -> String {
        match &self.live_socket {
            Some(link) => {
                format!("nginx upstream file {} (socket link {})", self.upstream_file.display(), link.display())
            }
            None => format!("nginx upstream file {}", self.upstream_file.display()),
        }
    }

    fn live_address(&self) -> anyhow::Result<Option<String>> {
        let Some(text) = self.read_text()? else {
            return Ok(None);
        };
        let server = self.server_of(&text)?;
        match (&server, &self.live_socket) {
            // Socket form: the marker names the live colour; without one (a file written by
            // hand), the link's target.
            (Some(s), Some(link)) if Some(s) == self.socket_server().as_ref() => match parse_marker(&text) {
                Some(socket) => Ok(Some(socket)),
                None => read_link(link),
            },
            _ => Ok(server),
        }
    }

    fn traffic_address(&self) -> anyhow::Result<Option<String>> {
        let Some(text) = self.read_text()? else {
            return Ok(None);
        };
        let server = self.server_of(&text)?;
        match (&server, &self.live_socket) {
            (Some(s), Some(link)) if Some(s) == self.socket_server().as_ref() => read_link(link),
            _ => Ok(server),
        }
    }

    fn switch(&self, to: &Backend, note: &str) -> anyhow::Result<()> {
        let previous = read_optional(&self.upstream_file)?;
        let (Some(link), Some(socket)) = (&self.live_socket, &to.socket) else {
            self.write_tested(&previous, &upstream_text(to, note))?;
            return self.reload();
        };
        // The first switch in socket mode moves the include to the link: one reload, after
        // the link exists. Every later switch is the rename alone.
        let was_socket_form = match &previous {
            Some(bytes) => parse_upstream(&String::from_utf8_lossy(bytes)).ok().flatten() == self.socket_server(),
            None => false,
        };
        self.write_tested(&previous, &socket_upstream_text(link, socket, note))?;
        if let Err(e) = relink(link, socket) {
            return Err(match self.restore(&previous) {
                Ok(()) => e.context(format!("{} restored; traffic unchanged", self.upstream_file.display())),
                Err(r) => e.context(format!("and restoring {} failed too: {r:#}", self.upstream_file.display())),
            });
        }
        if !was_socket_form {
            self.reload()?;
        }
        Ok(())
    }

    fn apply(&self) -> anyhow::Result<()> {
        self.test()?;
        // Socket form: the link follows the file (the truth).
        if let (Some(link), Some(text)) = (&self.live_socket, self.read_text()?) {
            if self.server_of(&text)? == self.socket_server() {
                if let Some(socket) = parse_marker(&text) {
                    if read_link(link)?.as_deref() != Some(socket.as_str()) {
                        relink(link, Path::new(&socket))?;
                    }
                }
            }
        }
        self.reload()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::color::Color;

    #[test]
    fn the_upstream_file_round_trips() {
        let b = Backend::new(Color::Green, "127.0.0.1:3002").expect("valid");
        let text = upstream_text(&b, "live green (v2)");
        assert_eq!(parse_upstream(&text), Ok(Some("127.0.0.1:3002".into())));
        assert_eq!(parse_upstream("server 127.0.0.1:1 max_fails=0;"), Ok(Some("127.0.0.1:1".into())));
        assert_eq!(parse_upstream("# nothing\n"), Ok(None));
        assert!(parse_upstream("server a:1;\nserver b:2;\n").is_err());
    }

    #[test]
    fn the_socket_form_names_the_link_and_the_live_socket() {
        let text =
            socket_upstream_text(Path::new("/run/app/live.sock"), Path::new("/run/app/green.sock"), "live green");
        assert_eq!(parse_upstream(&text), Ok(Some("unix:/run/app/live.sock".into())));
        assert_eq!(parse_marker(&text).as_deref(), Some("/run/app/green.sock"));
        assert_eq!(parse_marker("server unix:/x;\n"), None);
    }

    #[test]
    fn relink_replaces_the_link_atomically() {
        let dir = tempfile::tempdir().expect("dir");
        let link = dir.path().join("live.sock");
        relink(&link, Path::new("/run/blue.sock")).expect("first");
        relink(&link, Path::new("/run/green.sock")).expect("second");
        assert_eq!(std::fs::read_link(&link).expect("link"), Path::new("/run/green.sock"));
        assert_eq!(std::fs::read_dir(dir.path()).expect("ls").count(), 1, "no temporary link left");
    }
}
