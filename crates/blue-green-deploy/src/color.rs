//! The two colours, and what the tool knows of each: its address and the templates that
//! start and stop it.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use standby_common::exit::{self, Code};

/// Blue or green.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Color {
    Blue,
    Green,
}

impl Color {
    pub const ALL: [Color; 2] = [Color::Blue, Color::Green];

    pub fn as_str(self) -> &'static str {
        match self {
            Color::Blue => "blue",
            Color::Green => "green",
        }
    }

    /// The other colour.
    pub fn other(self) -> Color {
        match self {
            Color::Blue => Color::Green,
            Color::Green => Color::Blue,
        }
    }
}

impl fmt::Display for Color {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A colour with its address (`host:port`: health checks and the smoke suite go there) and,
/// in socket mode, the unix socket that the live link points at while it is live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backend {
    pub color: Color,
    pub address: String,
    pub port: u16,
    pub socket: Option<PathBuf>,
}

impl Backend {
    /// Check `host:port` (a usage error, exit 2, when it is not).
    pub fn new(color: Color, address: &str) -> anyhow::Result<Backend> {
        let bad = || {
            exit::error(
                Code::Usage,
                format!("[blue-green-deploy.{color}] address = {address:?}: expected host:port, e.g. 127.0.0.1:3001"),
            )
        };
        let (host, port) = address.rsplit_once(':').ok_or_else(bad)?;
        let port: u16 = port.parse().map_err(|_| bad())?;
        if host.is_empty() || host.contains('/') || port == 0 {
            return Err(bad());
        }
        Ok(Backend { color, address: address.to_string(), port, socket: None })
    }

    /// The same colour with a unix socket.
    pub fn with_socket(mut self, socket: Option<PathBuf>) -> Backend {
        self.socket = socket;
        self
    }

    /// `http://ADDRESS<path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// The values of `{color} {version} {address} {port} {socket}` (`{socket}` empty without one).
    pub fn vars(&self, version: Option<&str>) -> BTreeMap<&'static str, String> {
        BTreeMap::from([
            ("color", self.color.to_string()),
            ("version", version.unwrap_or_default().to_string()),
            ("address", self.address.clone()),
            ("port", self.port.to_string()),
            ("socket", self.socket.as_ref().map(|p| p.display().to_string()).unwrap_or_default()),
        ])
    }
}

/// Replace `{name}` in a command template with shell-quoted values, so that a version such
/// as `v2; rm -rf /` stays one word. Unknown `{...}` are left as they are.
pub fn render(template: &str, vars: &BTreeMap<&'static str, String>) -> String {
    let mut out = template.to_string();
    for (name, value) in vars {
        out = out.replace(&format!("{{{name}}}"), &shell_quote(value));
    }
    out
}

fn shell_quote(value: &str) -> String {
    if !value.is_empty() && value.chars().all(|c| c.is_ascii_alphanumeric() || "-_.:/@+=,".contains(c)) {
        return value.to_string();
    }
    format!("'{}'", value.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_are_shell_quoted() {
        let b = Backend::new(Color::Green, "127.0.0.1:3002").expect("valid");
        let line = render("start app@{color} {version} {port} {address} {other}", &b.vars(Some("v2; rm -rf /")));
        assert_eq!(line, "start app@green 'v2; rm -rf /' 3002 127.0.0.1:3002 {other}");
        let b = b.with_socket(Some("/run/app/green.sock".into()));
        assert_eq!(render("serve --unix {socket}", &b.vars(None)), "serve --unix /run/app/green.sock");
    }

    #[test]
    fn addresses_are_host_and_port() {
        assert!(Backend::new(Color::Blue, "127.0.0.1").is_err());
        assert!(Backend::new(Color::Blue, "127.0.0.1:0").is_err());
        assert!(Backend::new(Color::Blue, "unix:/run/app.sock").is_err());
        assert_eq!(Backend::new(Color::Blue, "[::1]:80").expect("ipv6").port, 80);
    }
}
