//! What every command starts from: the section checked (missing keys and bad addresses are
//! usage errors, exit 2, before anything runs), both colours, the proxy, the prober, the state
//! dir, and the smoke suite loaded and validated up front.

use std::collections::BTreeMap;
use std::time::Duration;

use standby_common::cli::Context;
use standby_common::exec::Cmd;
use standby_common::exit::{self, Code};
use standby_common::notify::{Event, EventKind};
use standby_common::state::StateDir;

use crate::color::{render, Backend, Color};
use crate::config::{ColorSpec, Config};
use crate::health::Prober;
use crate::proxy::{Nginx, Proxy};

/// The tool's name: its config section and env var prefix.
pub const TOOL: &str = "blue-green-deploy";

/// A loaded, checked configuration.
pub struct Setup {
    pub ctx: Context,
    pub config: Config,
    pub blue: Backend,
    pub green: Backend,
    pub proxy: Box<dyn Proxy>,
    pub prober: Prober,
    pub state: StateDir,
    pub suite: Option<smoke_test::Suite>,
    pub smoke_options: smoke_test::RunOptions,
}

impl std::fmt::Debug for Setup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Setup").field("blue", &self.blue).field("green", &self.green).finish()
    }
}

fn usage(message: impl Into<String>) -> anyhow::Error {
    exit::error(Code::Usage, message.into())
}

fn backend(color: Color, spec: &Option<ColorSpec>) -> anyhow::Result<Backend> {
    let spec = spec.as_ref().ok_or_else(|| {
        usage(format!(
            "[blue-green-deploy.{color}] address is not set (e.g. address = \"127.0.0.1:3001\"; flag --{color})"
        ))
    })?;
    Ok(Backend::new(color, &spec.address)?.with_socket(spec.socket.clone()))
}

/// Socket mode needs `live-socket` and a `socket` on both colours, all different.
fn check_sockets(config: &Config, blue: &Backend, green: &Backend) -> anyhow::Result<()> {
    match (&config.live_socket, &blue.socket, &green.socket) {
        (None, None, None) => Ok(()),
        (Some(link), Some(b), Some(g)) => {
            if b == g || link == b || link == g {
                return Err(usage(format!(
                    "live-socket ({}), blue's socket ({}) and green's ({}) must be three different paths",
                    link.display(),
                    b.display(),
                    g.display()
                )));
            }
            if !link.is_absolute() {
                return Err(usage(format!("live-socket {} must be an absolute path", link.display())));
            }
            Ok(())
        }
        (None, _, _) => {
            Err(usage("a colour has a socket but live-socket is not set (e.g. live-socket = \"/run/app/live.sock\")"))
        }
        (Some(_), _, _) => Err(usage(
            "live-socket is set: both [blue-green-deploy.blue] and [blue-green-deploy.green] need socket = PATH",
        )),
    }
}

impl Setup {
    pub fn new(ctx: Context, config: Config) -> anyhow::Result<Setup> {
        let upstream_file = config
            .upstream_file
            .clone()
            .ok_or_else(|| usage("upstream-file is not set: the nginx include that names the live colour"))?;
        let blue = backend(Color::Blue, &config.blue)?;
        let green = backend(Color::Green, &config.green)?;
        if blue.address == green.address {
            return Err(usage(format!("blue and green have the same address {}", blue.address)));
        }
        check_sockets(&config, &blue, &green)?;
        if let Some(url) = &config.public_url {
            smoke_test::suite::check_url(url).map_err(|e| usage(format!("public-url: {e}")))?;
        }
        if !config.health_path.starts_with('/') {
            return Err(usage(format!("health-path {:?} must start with /", config.health_path)));
        }
        let suite = match &config.smoke_suite {
            Some(path) => Some(smoke_test::Suite::load(path, &BTreeMap::new())?),
            None => None,
        };
        let smoke_config: smoke_test::config::Config = ctx.config.section_or_default("smoke-test")?;
        let smoke_options = smoke_test::RunOptions::from_config(&smoke_config)?;
        let proxy =
            Box::new(Nginx { upstream_file, argv: config.nginx.0.clone(), live_socket: config.live_socket.clone() });
        let prober = Prober::new(config.color_header.clone())?;
        let state = ctx.state()?;
        Ok(Setup { ctx, config, blue, green, proxy, prober, state, suite, smoke_options })
    }

    pub fn backend(&self, color: Color) -> &Backend {
        match color {
            Color::Blue => &self.blue,
            Color::Green => &self.green,
        }
    }

    /// The live colour, from the proxy's configuration. An address that is neither colour's
    /// is an error (exit 1): someone changed the file by hand.
    pub fn live(&self) -> anyhow::Result<Option<Color>> {
        self.color_of(self.proxy.live_address()?)
    }

    /// The colour connections go to now (socket mode: the link's target), which differs from
    /// [`Setup::live`] only after a run was killed between writing the file and the link.
    pub fn traffic(&self) -> anyhow::Result<Option<Color>> {
        self.color_of(self.proxy.traffic_address()?)
    }

    /// A sentence when the file and the link disagree (the file is the truth; the next
    /// deploy repairs the link from it).
    pub fn mismatch(&self) -> anyhow::Result<Option<String>> {
        let (live, traffic) = (self.live()?, self.traffic()?);
        if live == traffic {
            return Ok(None);
        }
        let name = |c: Option<Color>| c.map(|c| c.to_string()).unwrap_or_else(|| "nothing".into());
        Ok(Some(format!(
            "{} names {} but connections go to {} (an interrupted switch); the next deploy repairs the link",
            self.proxy.describe(),
            name(live),
            name(traffic)
        )))
    }

    fn color_of(&self, address: Option<String>) -> anyhow::Result<Option<Color>> {
        let Some(address) = address else {
            return Ok(None);
        };
        let matches = |b: &Backend| {
            b.address == address
                || b.socket.as_ref().is_some_and(|s| {
                    let s = s.display().to_string();
                    s == address || format!("unix:{s}") == address
                })
        };
        Color::ALL.into_iter().find(|c| matches(self.backend(*c))).map(Some).ok_or_else(|| {
            exit::error(
                Code::Failed,
                format!(
                    "{} sends traffic to {address}, which is neither blue ({}) nor green ({})",
                    self.proxy.describe(),
                    self.blue.address,
                    self.green.address
                ),
            )
        })
    }

    /// The colour's health URL, directly.
    pub fn health_url(&self, color: Color) -> String {
        self.backend(color).url(&self.config.health_path)
    }

    /// The health URL through the proxy, if `public-url` is set.
    pub fn public_health_url(&self) -> Option<String> {
        self.config.public_url.as_ref().map(|u| format!("{}{}", u.trim_end_matches('/'), self.config.health_path))
    }

    /// Run the start or stop template for a colour.
    pub fn run_template(&self, which: &str, color: Color, version: Option<&str>) -> anyhow::Result<String> {
        let template = match which {
            "start" => self.config.start.as_deref(),
            _ => self.config.stop.as_deref(),
        };
        let Some(template) = template else {
            return Err(usage(format!("{which} is not set: the command that {which}s a colour")));
        };
        let line = render(template, &self.backend(color).vars(version));
        let timeout = self.config.health_timeout.get().max(Duration::from_secs(60));
        Cmd::shell(&line).timeout(timeout).run_ok()?;
        Ok(line)
    }

    /// Tell the `[[notify]]` list.
    pub fn notify(&self, kind: EventKind, message: &str, details: serde_json::Value) {
        let event = Event::new(TOOL, kind, "deploy", message).with_details(details);
        self.ctx.notifiers.send_blocking(&event);
    }
}
