//! The `[blue-green-deploy]` section of the standby config file. The key names are the
//! interface of issue 11; each scalar key is also a flag and an env var.
//!
//! ```toml
//! [blue-green-deploy]
//! upstream-file = "/etc/nginx/conf.d/app-upstream.conf"   # the one source of truth for the live colour
//! nginx = ["nginx"]              # argv prefix; `-t` and `-s reload` are appended
//! start = "systemctl start app@{color}"    # templates: {color} {version} {address} {port}
//! stop = "systemctl stop app@{color}"
//! health-path = "/health"
//! health-timeout = "30s"
//! smoke-suite = "/etc/standby/smoke.toml"  # run in-process against the idle colour
//! watch = "60s"                  # after the switch: health through nginx
//! drain = "10s"                  # before the old colour is stopped
//! public-url = "http://127.0.0.1:8080"     # the app through nginx (verify and watch)
//!
//! [blue-green-deploy.blue]
//! address = "127.0.0.1:3001"
//! [blue-green-deploy.green]
//! address = "127.0.0.1:3002"
//! ```
//!
//! Switching without a reload (optional): each colour also listens on a unix socket, nginx's
//! upstream names `unix:<live-socket>` once, and a switch renames a symlink over it.
//!
//! ```toml
//! [blue-green-deploy]
//! live-socket = "/run/app/live.sock"
//! [blue-green-deploy.blue]
//! address = "127.0.0.1:3001"
//! socket = "/run/app/blue.sock"
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use standby_common::duration::HumanDuration;

standby_common::section! {
    /// Settings of blue-green-deploy.
    pub struct Config {
        /// The nginx include that names the live colour's address (`server ADDR;`): the one
        /// source of truth for which colour is live
        #[arg(long, value_name = "PATH")]
        pub upstream_file: Option<PathBuf>,
        /// nginx's argv prefix; `-t` and `-s reload` are appended (e.g. "nginx -p /srv/nginx
        /// -c /srv/nginx/nginx.conf"; in the file a list)
        #[arg(long, value_name = "ARGV", default_value = "nginx")]
        pub nginx: Argv,
        /// Command that starts a colour (sh -c); {color} {version} {address} {port} are
        /// replaced, shell-quoted
        #[arg(long, value_name = "CMD")]
        pub start: Option<String>,
        /// Command that stops a colour (sh -c), same templates as start
        #[arg(long, value_name = "CMD")]
        pub stop: Option<String>,
        /// Path of the app's health endpoint on each colour
        #[arg(long, value_name = "PATH", default_value = "/health")]
        pub health_path: String,
        /// How long a started colour may take to answer its health check with 2xx
        #[arg(long, value_name = "DUR", default_value = "30s")]
        pub health_timeout: HumanDuration,
        /// smoke-test suite run in-process against the idle colour before the switch (and
        /// through nginx after it, when public-url is set) [default: none]
        #[arg(long, value_name = "FILE")]
        pub smoke_suite: Option<PathBuf>,
        /// After the switch: how long health is watched through nginx; a failure rolls back
        #[arg(long, value_name = "DUR", default_value = "60s")]
        pub watch: HumanDuration,
        /// Before the old colour is stopped: time for its requests in flight to finish
        #[arg(long, value_name = "DUR", default_value = "10s")]
        pub drain: HumanDuration,
        /// The app through nginx (e.g. http://127.0.0.1:8080); verify and watch go through it
        /// [default: none: they probe the new colour's address directly]
        #[arg(long, value_name = "URL")]
        pub public_url: Option<String>,
        /// Response header that names the colour that answered (e.g. X-Color); with it, the
        /// switch is verified to reach the new colour through nginx [default: none]
        #[arg(long, value_name = "NAME")]
        pub color_header: Option<String>,
        /// The symlink nginx proxies to (`server unix:PATH;`), renamed atomically onto the live
        /// colour's `socket` at a switch: no reload, no failed keep-alive request. Needs
        /// `socket` on both colours [default: none: switch by include swap + reload]
        #[arg(long, value_name = "PATH")]
        pub live_socket: Option<PathBuf>,
        /// The blue colour: `[blue-green-deploy.blue] address = "127.0.0.1:3001"` and optionally
        /// `socket = "/run/app/blue.sock"` (as a flag, ADDRESS[,SOCKET])
        #[arg(long, value_name = "ADDRESS")]
        pub blue: Option<ColorSpec>,
        /// The green colour: `[blue-green-deploy.green] address = "127.0.0.1:3002"`
        #[arg(long, value_name = "ADDRESS")]
        pub green: Option<ColorSpec>,
    }
}

/// An argv prefix: a list in the file, words split on whitespace as a flag or env var.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Argv(pub Vec<String>);

impl FromStr for Argv {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let words: Vec<String> = s.split_whitespace().map(str::to_string).collect();
        if words.is_empty() {
            return Err("an empty command".into());
        }
        Ok(Argv(words))
    }
}

impl fmt::Display for Argv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join(" "))
    }
}

/// One colour's table: where it listens (`host:port`), and optionally its unix socket (the
/// path `live-socket` points at while it is live).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "BTreeMap<String, String>")]
pub struct ColorSpec {
    pub address: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub socket: Option<PathBuf>,
}

impl TryFrom<BTreeMap<String, String>> for ColorSpec {
    type Error = String;

    /// Only a table with `address` and optionally `socket` (a list or a bare string is refused).
    fn try_from(mut table: BTreeMap<String, String>) -> Result<Self, String> {
        let address = table.remove("address").ok_or("missing key `address`")?;
        let socket = table.remove("socket");
        if let Some(key) = table.keys().next() {
            return Err(format!("unknown key `{key}`, expected `address` or `socket`"));
        }
        let mut spec: ColorSpec = address.parse()?;
        spec.socket = socket.map(|s| socket_path(&s)).transpose()?;
        Ok(spec)
    }
}

fn socket_path(s: &str) -> Result<PathBuf, String> {
    let path = PathBuf::from(s.trim().trim_start_matches("unix:"));
    if !path.is_absolute() {
        return Err(format!("socket {s:?} must be an absolute path, e.g. /run/app/blue.sock"));
    }
    Ok(path)
}

impl FromStr for ColorSpec {
    type Err = String;

    /// `ADDRESS` or `ADDRESS,SOCKET`.
    fn from_str(s: &str) -> Result<Self, String> {
        let (address, socket) = match s.split_once(',') {
            Some((a, sock)) => (a.trim(), Some(socket_path(sock)?)),
            None => (s.trim(), None),
        };
        if address.is_empty() {
            return Err("an empty address".into());
        }
        Ok(ColorSpec { address: address.to_string(), socket })
    }
}
