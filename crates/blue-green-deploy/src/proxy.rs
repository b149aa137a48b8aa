//! The reverse proxy in front of the colours. [`Proxy`] is what a deploy needs from it (where
//! traffic goes now, and a guarded switch); [`Nginx`] implements it with an `upstream` include
//! file and `nginx -t` / `nginx -s reload`. HAProxy (a server line + `-c` + reload over the
//! master socket) and Caddy (its admin API) fit the same trait.

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
    /// Send traffic to `to`. The new configuration is validated before it is applied; when
    /// it is rejected, the previous one is restored, nothing is applied, and the error
    /// (exit 1) says so.
    fn switch(&self, to: &Backend, note: &str) -> anyhow::Result<()>;
    /// Validate and apply the configuration as it is (after an interrupted switch, so that
    /// the proxy serves what its file says).
    fn apply(&self) -> anyhow::Result<()>;
}

/// nginx with an include file inside `upstream app { include FILE; }` that holds one
/// `server ADDRESS;` line.
#[derive(Debug, Clone)]
pub struct Nginx {
    pub upstream_file: PathBuf,
    /// argv prefix: `nginx`, or `nginx -p PREFIX -c CONF`.
    pub argv: Vec<String>,
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

impl Proxy for Nginx {
    fn describe(&self) -> String {
        format!("nginx upstream file {}", self.upstream_file.display())
    }

    fn live_address(&self) -> anyhow::Result<Option<String>> {
        let Some(bytes) = read_optional(&self.upstream_file)? else {
            return Ok(None);
        };
        parse_upstream(&String::from_utf8_lossy(&bytes))
            .map_err(|e| exit::error(Code::Failed, format!("{}: {e}", self.upstream_file.display())))
    }

    fn switch(&self, to: &Backend, note: &str) -> anyhow::Result<()> {
        let previous = read_optional(&self.upstream_file)?;
        write_atomic(&self.upstream_file, upstream_text(to, note).as_bytes())?;
        if let Err(e) = self.test() {
            let restored = match &previous {
                Some(bytes) => write_atomic(&self.upstream_file, bytes),
                None => std::fs::remove_file(&self.upstream_file)
                    .with_context(|| format!("cannot remove {}", self.upstream_file.display())),
            };
            return Err(match restored {
                Ok(()) => e.context(format!(
                    "{} restored to its previous content; nginx was not reloaded, traffic unchanged",
                    self.upstream_file.display()
                )),
                Err(r) => e.context(format!("and restoring {} failed too: {r:#}", self.upstream_file.display())),
            });
        }
        self.reload()
    }

    fn apply(&self) -> anyhow::Result<()> {
        self.test()?;
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
}
