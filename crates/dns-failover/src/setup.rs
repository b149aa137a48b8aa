//! What every command starts from: the merged section, its records and control targets
//! validated, the providers built (credentials read), the state dir.

use standby_common::cli::Context;
use standby_common::exit::{self, Code};
use standby_common::state::{RunLock, StateDir};

use crate::config::Config;
use crate::health::Probe;
use crate::memory::{CallLog, Memory};
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

/// What a command that may switch works with: the selected records, the run lock (exit 3
/// while another run holds it), the providers and the memory. [`Session::save`] writes the
/// memory back and notes the API calls made.
pub struct Session {
    pub records: Vec<Record>,
    pub state: StateDir,
    pub providers: Providers,
    pub memory: Memory,
    _lock: Option<RunLock>,
}

impl Setup {
    /// Start a session over the records named (all when none); `locked` takes the run lock.
    pub fn session(&self, names: &[String], locked: bool) -> anyhow::Result<Session> {
        let records = self.selected(names)?;
        let state = self.state()?;
        let lock = if locked { Some(state.lock("dns-failover")?) } else { None };
        let providers = self.providers(&records)?;
        let memory = Memory::load(&state)?;
        Ok(Session { records, state, providers, memory, _lock: lock })
    }
}

impl Session {
    /// Keep the memory and note the API calls since the last save.
    pub fn save(&mut self, calls_noted: &mut u64) -> anyhow::Result<()> {
        keep(&self.state, &self.memory, &self.providers, calls_noted)
    }
}

/// [`Session::save`] on a session's parts (a daemon holds them borrowed).
pub fn keep(state: &StateDir, memory: &Memory, providers: &Providers, calls_noted: &mut u64) -> anyhow::Result<()> {
    memory.save(state)?;
    let calls = providers.calls();
    if calls != *calls_noted {
        let now_s = crate::memory::now_ms() / 1000;
        if let Err(e) = CallLog::record(state, now_s, calls - *calls_noted) {
            tracing::warn!("cannot note the API calls made: {e:#}");
        }
        *calls_noted = calls;
    }
    Ok(())
}
