//! `status`: per record the values at the provider now, which side that is, both sides'
//! health, the counters, the last switch and why; the API calls of the last hour. Changes
//! nothing. Exit 1 when a record is on neither side or its primary and backup both fail.

use standby_common::exit::Code;

use crate::memory::CallLog;
use crate::record::Side;
use crate::report::{StatusLine, StatusReport};
use crate::round::{self, Outcome};
use crate::setup::Setup;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only these records (repeatable)
    #[arg(long = "record", value_name = "NAME")]
    pub records: Vec<String>,
}

pub fn run(setup: &Setup, args: &Args) -> anyhow::Result<Code> {
    let session = setup.session(&args.records, false)?;
    let (records, providers, memory, state) = (&session.records, &session.providers, &session.memory, &session.state);
    let timeout = setup.config.timeout.get();
    let lines = standby_common::runtime()?.block_on(async {
        let mut out = Vec::new();
        for record in records {
            let health = round::probe(record, timeout).await;
            let remembered = memory.records.get(&round::key(record));
            let mut outcome = Outcome::blank(record, health, remembered.map(|m| m.streak).unwrap_or_default(), false);
            outcome.isolated = remembered.is_some_and(|m| m.isolated);
            match providers.read(record).await {
                Ok(set) => {
                    outcome.side = record.side_of(&set.values);
                    outcome.values = set.values;
                }
                Err(e) => outcome.error = Some(format!("{e:#}")),
            }
            out.push(StatusLine::new(outcome, remembered));
        }
        out
    });
    let calls = CallLog::record(state, crate::memory::now_ms() / 1000, providers.calls())?;
    let bad = lines.iter().any(|l| {
        l.now.error.is_some() || l.now.side == Side::Other || (!l.now.health.primary.ok && !l.now.health.backup_ok())
    });
    let report = StatusReport { records: lines, api_calls_last_hour: calls.last_hour() };
    let code = if bad { Code::Failed } else { Code::Ok };
    setup.ctx.output.report(&report, code)?;
    Ok(code)
}
