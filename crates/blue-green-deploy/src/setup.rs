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
    Backend::new(color, &spec.address)
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
        let proxy = Box::new(Nginx { upstream_file, argv: config.nginx.0.clone() });
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
        let Some(address) = self.proxy.live_address()? else {
            return Ok(None);
        };
        Color::ALL.into_iter().find(|c| self.backend(*c).address == address).map(Some).ok_or_else(|| {
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
