//! What every command starts from: the merged section, its records and control targets
//! validated, the providers built (credentials read), the state dir.

use standby_common::cli::Context;
use standby_common::exit::{self, Code};
use standby_common::state::StateDir;

use crate::config::Config;
use crate::health::Probe;
use crate::provider::Providers;
use crate::record::{self, Record};

pub struct Setup {
    pub ctx: Context,
    pub config: Config,
    pub records: Vec<Record>,
    pub control: Vec<Probe>,
}

impl Setup {
    /// Validate the records and control targets (exit 2 with file:line on a bad one).
    pub fn new(ctx: Context, config: Config) -> anyhow::Result<Setup> {
        let records = record::records(&ctx.config, &config)?;
        let control = config
            .control
            .iter()
            .map(|c| Probe::parse(c).map_err(|e| exit::error(Code::Usage, format!("control: {e}"))))
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Setup { ctx, config, records, control })
    }

    /// The records named by `--record` (all when none is named); an unknown name is exit 2.
    pub fn selected(&self, names: &[String]) -> anyhow::Result<Vec<Record>> {
        if self.records.is_empty() {
            return Err(exit::error(Code::Usage, "no [[dns-failover.record]] in the config file"));
        }
        if names.is_empty() {
            return Ok(self.records.clone());
        }
        let mut out = Vec::new();
        for name in names {
            let name = record::fqdn(name);
            let found: Vec<Record> = self.records.iter().filter(|r| r.name == name).cloned().collect();
            if found.is_empty() {
                let known: Vec<&str> = self.records.iter().map(|r| r.name.as_str()).collect();
                return Err(exit::error(
                    Code::Usage,
                    format!("--record {name}: not in the config (known: {})", known.join(", ")),
                ));
            }
            out.extend(found);
        }
        Ok(out)
    }

    pub fn providers(&self, records: &[Record]) -> anyhow::Result<Providers> {
        Providers::for_records(&self.config, records, self.config.timeout.get())
    }

    pub fn state(&self) -> anyhow::Result<StateDir> {
        self.ctx.state()
    }
}
